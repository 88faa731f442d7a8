"""Create (or reset) a user for the API and the dashboards without opening the admin."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Create or update a user. The password comes from --password-env VAR or standard input, "
        "never from the command line (it would land in shell history)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
        parser.add_argument("--admin", action="store_true", help="staff + superuser")

    def handle(self, *args: Any, **options: Any) -> None:
        password = self._password(options["password_env"])
        user_model = get_user_model()
        user = user_model.objects.filter(username=options["username"]).first()
        candidate = user or user_model(username=options["username"], email=options["email"])
        try:
            validate_password(password, user=candidate)
        except ValidationError as exc:
            raise CommandError("password rejected: " + " ".join(exc.messages)) from exc
        candidate.set_password(password)
        candidate.is_staff = candidate.is_superuser = options["admin"]
        candidate.save()
        verb = "Updated" if user else "Created"
        self.stdout.write(f"{verb} user {candidate.username!r} (admin={options['admin']}).")

    def _password(self, env_var: str | None) -> str:
        if env_var:
            if not os.environ.get(env_var):
                raise CommandError(f"--password-env: ${env_var} is empty or unset")
            return os.environ[env_var]
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise CommandError("no password: pass --password-env VAR or pipe it on stdin")
        return password
