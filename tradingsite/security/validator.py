"""Production startup validator: every rule that a production deployment must satisfy.

Messages name the setting and say what is wrong; they never contain the secret itself.
"""

from __future__ import annotations

from typing import Any

MIN_JWT_SECRET_BYTES = 32
MIN_SECRET_KEY_CHARS = 50
MIN_SECRET_KEY_UNIQUE_CHARS = 5
MIN_HSTS_SECONDS = 31_536_000
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
    return errors
