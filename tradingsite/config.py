"""Small pure helpers that turn environment strings into Django settings (no Django imports)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

# The seed's deployment guide writes SQLAlchemy-style URLs (postgresql+asyncpg://...). The driver
# suffix means nothing to Django, which always talks to PostgreSQL through psycopg 3.
_POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "psql"}


class ConfigError(ValueError):
    """A setting from the environment cannot be understood; the message names the variable."""


def parse_csv(value: str) -> list[str]:
    """`"a, b,,c"` -> `["a", "b", "c"]`."""
    return [part.strip() for part in value.split(",") if part.strip()]


def database_config(url: str, *, base_dir: Path, persistent: bool) -> dict[str, Any]:
    """Django DATABASES entry for `url` (empty: SQLite file in `base_dir`)."""
    if not url:
        url = "sqlite:///db.sqlite3"
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme == "sqlite":
        return _sqlite_config(parts.path, base_dir)
    if scheme not in _POSTGRES_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL: unsupported scheme {parts.scheme!r}; use postgresql:// or sqlite:///"
        )
    if not parts.path.strip("/"):
        raise ConfigError("DATABASE_URL: the database name is missing (postgresql://host/NAME)")
    config: dict[str, Any] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # A restarted PostgreSQL must fail fast, not hang a worker (reliability.md §1.1).
        "OPTIONS": {"connect_timeout": int(os.environ.get("DB_CONNECT_TIMEOUT_SECONDS", "2"))},
        "CONN_HEALTH_CHECKS": True,
        "CONN_MAX_AGE": 0,
    }
    if persistent:
        # Each request thread (tradingsite.handlers: a fixed pool per process) keeps its
        # connection between requests, checked for usability at its first use in a request;
        # WORKERS x REQUEST_THREADS (+ Celery) connections at most.
        config["CONN_MAX_AGE"] = int(os.environ.get("DB_CONN_MAX_AGE_SECONDS", "300"))
    return config


def _sqlite_config(path: str, base_dir: Path) -> dict[str, Any]:
    # sqlite:///db.sqlite3 is relative to the project; sqlite:////abs/path is absolute.
    name = path[1:] if path.startswith("/") else path
    if name in ("", ":memory:"):
        name = ":memory:"
    elif not name.startswith("/"):
        name = str(base_dir / name)
    # A generous busy timeout: the web server and the embedded Celery worker share the file.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }


def dev_secret_key(var_dir: Path) -> str:
    """A random SECRET_KEY kept in var/ so development sessions survive restarts."""
    path = var_dir / "dev-secret-key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        path.write_text(key)
        return key
