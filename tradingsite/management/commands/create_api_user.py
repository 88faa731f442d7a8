"""Create (or reset) a user for the API and the dashboards without opening the admin, and put
it in roles (tradingsite.dashboard.roles)."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tradingsite.dashboard.roles import (
    ANALYST_GROUP,
    DATA_ENGINEER_GROUP,
    MODEL_ADMIN_GROUP,
    RESEARCHER_GROUP,
    roles_ensure,
)

# --role's values (no spaces, for the shell) and the groups they name.
ROLE_GROUPS = {
    "analyst": ANALYST_GROUP,
    "researcher": RESEARCHER_GROUP,
    "data-engineer": DATA_ENGINEER_GROUP,
    "model-admin": MODEL_ADMIN_GROUP,
}


class Command(BaseCommand):
    help = (
        "Create or update a user. The password comes from --password-env VAR or standard input, "
        "never from the command line (it would land in shell history). --role (repeatable) adds "
        "the user to a role's group; roles already held are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
        parser.add_argument("--admin", action="store_true", help="staff + superuser")
        parser.add_argument(
            "--role",
            action="append",
            default=[],
            choices=sorted(ROLE_GROUPS),
            help="add the user to this role (repeatable): analyst reads; researcher also tracks "
            "experiments (MLflow); data-engineer also ingests bars and materializes; "
            "model-admin also promotes",
        )

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
        roles = list(dict.fromkeys(options["role"]))
        with transaction.atomic():
            candidate.save()
            if roles:
                roles_ensure()
                groups = Group.objects.filter(name__in=[ROLE_GROUPS[r] for r in roles])
                candidate.groups.add(*groups)
        held = sorted(candidate.groups.values_list("name", flat=True))
        verb = "Updated" if user else "Created"
        self.stdout.write(
            f"{verb} user {candidate.username!r} (admin={options['admin']}, "
            f"roles: {', '.join(held) or 'none'})."
        )

    def _password(self, env_var: str | None) -> str:
        if env_var:
            if not os.environ.get(env_var):
                raise CommandError(f"--password-env: ${env_var} is empty or unset")
            return os.environ[env_var]
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise CommandError("no password: pass --password-env VAR or pipe it on stdin")
        return password
