"""`manage.py create_api_token USERNAME --name laptop [--expires-days 90]`: a personal API token
for MLFLOW_TRACKING_TOKEN or `Authorization: Bearer`, printed once (only its hash is kept)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tradingsite.security.api_tokens import api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="a label to tell the token apart")
        parser.add_argument("--expires-days", type=int, default=None, help="default: never")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None or not user.is_active:
            raise CommandError(f"no active user {options['username']!r}")
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be at least 1")
        name = options["name"][:100]
        expires_at = None if days is None else timezone.now() + timedelta(days=days)
        row, token = api_token_create(user=user, name=name, expires_at=expires_at)
        self.stderr.write(
            f"API token {row.prefix}… for {user.get_username()}"
            + (f", expires {expires_at:%Y-%m-%d}" if expires_at else ", no expiry")
            + ". Store it now: it cannot be shown again."
        )
        self.stdout.write(token)
