"""Production startup validator: every rule that a production deployment must satisfy.

Messages name the setting and say what is wrong; they never contain the secret itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

MIN_JWT_SECRET_BYTES = 32
MIN_SECRET_KEY_CHARS = 50
MIN_SECRET_KEY_UNIQUE_CHARS = 5
MIN_HSTS_SECONDS = 31_536_000
# Widest networks METRICS_ALLOWED_IPS may name in production: an IPv4 /8 (one organisation's
# block, e.g. 10.0.0.0/8) and an IPv6 /32 (one provider's allocation). Anything wider, up to
# 0.0.0.0/0 or ::/0, is "everyone". A scraper outside the allow-list uses METRICS_TOKEN instead
# (token-only mode: an empty METRICS_ALLOWED_IPS and a METRICS_TOKEN).
MIN_METRICS_PREFIX = {4: 8, 6: 32}
PLACEHOLDER_SECRETS = {"change_me", "changeme", "secret", "please-change-me"}


def _is_placeholder(value: str) -> bool:
    return value.strip().lower().replace("-", "_") in PLACEHOLDER_SECRETS


def jwt_secret_errors(jwt_secret: str, secret_key: str) -> list[str]:
    if not jwt_secret:
        return ["JWT_SECRET is missing; set a random value of at least 32 bytes"]
    if _is_placeholder(jwt_secret):
        return ["JWT_SECRET is a placeholder (CHANGE_ME); set a random value of at least 32 bytes"]
    errors = []
    if len(jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
        errors.append(f"JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes")
    if secret_key and jwt_secret == secret_key:
        errors.append("JWT_SECRET must differ from SECRET_KEY")
    return errors


def secret_key_errors(secret_key: str) -> list[str]:
    if not secret_key:
        return ["SECRET_KEY is missing; set a random value of at least 50 characters"]
    if (
        _is_placeholder(secret_key)
        or len(secret_key) < MIN_SECRET_KEY_CHARS
        or len(set(secret_key)) < MIN_SECRET_KEY_UNIQUE_CHARS
        or secret_key.startswith("django-insecure-")
    ):
        return [
            f"SECRET_KEY is weak: it needs at least {MIN_SECRET_KEY_CHARS} characters, "
            f"{MIN_SECRET_KEY_UNIQUE_CHARS} distinct ones, and no 'django-insecure-' prefix"
        ]
    return []


def _list_errors(name: str, values: list[str]) -> list[str]:
    if not values:
        return [f"{name} is empty; list the allowed values explicitly (comma separated)"]
    if any("*" in v for v in values):
        return [f"{name} contains a wildcard '*'; list the allowed values explicitly"]
    return []


def metrics_allow_list_errors(networks: Iterable[Any]) -> list[str]:
    """/metrics names internal services and traffic: refuse an allow-list that admits anyone."""
    too_wide = [
        str(network)
        for network in map(ipaddress.ip_network, map(str, networks))
        if network.prefixlen < MIN_METRICS_PREFIX[network.version]
    ]
    if not too_wide:
        return []
    return [
        f"METRICS_ALLOWED_IPS admits too wide a network ({', '.join(too_wide)}); list the "
        "scraper's networks (at most an IPv4 /8 or an IPv6 /32), or leave it empty and set "
        "METRICS_TOKEN"
    ]


def production_settings_errors(settings: Any) -> list[str]:
    """Everything wrong with `settings` for production; an empty list means it may start."""
    errors = secret_key_errors(settings.SECRET_KEY)
    errors += jwt_secret_errors(settings.JWT_SECRET, settings.SECRET_KEY)
    if settings.DEBUG:
        errors.append("DEBUG is on; production must run with DEBUG off")
    errors += _list_errors("ALLOWED_ORIGINS", settings.ALLOWED_ORIGINS)
    errors += _list_errors("TRUSTED_HOSTS", settings.TRUSTED_HOSTS)
    if not settings.DATABASE_URL:
        errors.append("DATABASE_URL is missing; production needs PostgreSQL")
    elif settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        errors.append("DATABASE_URL must point at PostgreSQL in production, not SQLite")
    if not settings.REDIS_URL:
        errors.append("REDIS_URL is missing; production needs Redis (cache, limits, broker)")
    if not getattr(settings, "SECURE_SSL_REDIRECT", False):
        errors.append("SECURE_SSL_REDIRECT is off; production redirects HTTP to HTTPS")
    if getattr(settings, "SECURE_HSTS_SECONDS", 0) < MIN_HSTS_SECONDS:
        errors.append(f"SECURE_HSTS_SECONDS is below {MIN_HSTS_SECONDS} (one year)")
    errors += metrics_allow_list_errors(getattr(settings, "METRICS_ALLOWED_NETWORKS", ()))
    return errors
