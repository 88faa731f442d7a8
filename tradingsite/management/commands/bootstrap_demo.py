"""`make run`'s demo set-up: a login for the newcomer (development only)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"  # noqa: S105 - development profile only; refused in production


class Command(BaseCommand):
    help = "Create the demo admin user (admin / admin) if absent. Refused in production."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError("bootstrap_demo is for development; use create_api_user instead")
        users = get_user_model().objects
        if not users.filter(username=DEMO_USERNAME).exists():
            users.create_superuser(DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD)
            self.stdout.write(f"Created demo user {DEMO_USERNAME!r}.")
        self.stdout.write(
            f"Log in as {DEMO_USERNAME} / {DEMO_PASSWORD} (browser), or get an API token with:\n"
            f"  curl -s -X POST localhost:{settings.PORT}/api/v1/auth/token/ "
            f"-H 'Content-Type: application/json' "
            f'-d \'{{"username":"{DEMO_USERNAME}","password":"{DEMO_PASSWORD}"}}\''
        )
