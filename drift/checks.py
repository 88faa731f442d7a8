"""`manage.py check` refuses drift webhook settings that would send unsigned or unsafe alerts."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from drift.webhooks import WebhookRefused, webhook_target

MIN_PRODUCTION_SECRET_BYTES = 32


def _target_refusal(url: str) -> str | None:
    """Why delivery would refuse `url` (an internal address, also spelled as a decimal or hex
    number, or a name resolving to one), found at configuration time. A name that does not
    resolve here is left to the check every delivery makes."""
    try:
        webhook_target(url)
    except WebhookRefused as exc:
        unresolved = isinstance(exc.__cause__, (socket.gaierror, UnicodeError))
        return None if unresolved else str(exc)
    return None


@register()
def drift_webhook_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    urls = settings.DRIFT_WEBHOOK_URLS
    schemes = ("https",) if settings.IS_PRODUCTION else ("https", "http")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in schemes or not parts.hostname:
            errors.append(
                Error(
                    f"DRIFT_WEBHOOK_URLS: {url!r} is not an {' or '.join(schemes)} URL with a host",
                    id="drift.E001",
                )
            )
        elif refusal := _target_refusal(url):
            errors.append(
                Error(f"DRIFT_WEBHOOK_URLS: {url!r} is refused: {refusal}", id="drift.E004")
            )
    secret = settings.DRIFT_WEBHOOK_SECRET
    minimum = MIN_PRODUCTION_SECRET_BYTES if settings.IS_PRODUCTION else 1
    if urls and len(secret.encode()) < minimum:
        errors.append(
            Error(
                f"DRIFT_WEBHOOK_SECRET must be set (at least {minimum} bytes here) when "
                "DRIFT_WEBHOOK_URLS is: alerts are signed with it",
                id="drift.E002",
            )
        )
    if settings.IS_PRODUCTION and settings.DRIFT_WEBHOOK_ALLOW_PRIVATE:
        errors.append(
            Error(
                "DRIFT_WEBHOOK_ALLOW_PRIVATE is for tests and closed networks, not production "
                "(it lets webhooks reach internal addresses)",
                id="drift.E003",
            )
        )
    return errors
