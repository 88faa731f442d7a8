"""Personal API tokens: long-lived, revocable bearer credentials for scripts.

Access JWTs live 15 minutes, which a training script that runs for hours cannot use. A personal
token (`ts_` + 43 random URL-safe characters, 256 bits) is sent the same way,
`Authorization: Bearer ts_…` (the MLflow client sends `MLFLOW_TRACKING_TOKEN` so), on /api/v1 and
on the MLflow API. Only its SHA-256 is stored (a fast hash is enough for 256 random bits), the
token is shown once, and every request asks the database, so a revocation, an expiry or a
deactivated user counts on the very next request.

Tokens are created by `manage.py create_api_token` or by a logged-in user at
/api/v1/auth/api-tokens/ (experiments/api/tokens.py: this module is imported while DRF's views
module initializes, so it cannot define views itself).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from tradingsite import audit
from tradingsite.models import ApiToken, AuditAction
from tradingsite.observability.metrics import AUTH_FAILURES, AUTH_TOKENS_ISSUED

TOKEN_PREFIX = "ts_"
PREFIX_SHOWN_CHARS = 10  # "ts_" + 7 characters: enough to tell a user's tokens apart
LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most once a minute
_REFUSED = "API token is invalid, expired or revoked"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(
    *, user: AbstractBaseUser, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the token, which is never retrievable again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=token[:PREFIX_SHOWN_CHARS],
        token_hash=token_hash(token),
        expires_at=expires_at,
    )
    AUTH_TOKENS_ISSUED.labels(grant="api_token").inc()
    audit.record(
        AuditAction.API_TOKEN_CREATED,
        actor=user,
        target=row,
        details={"prefix": row.prefix, "expires_at": expires_at and expires_at.isoformat()},
    )
    return row, token


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke `token` from the next request on; revoking twice keeps the first time."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        # tokens are revoked by their owner (the API serves only one's own tokens)
        audit.record(
            AuditAction.API_TOKEN_REVOKED,
            actor=token.user,
            target=token,
            details={"prefix": token.prefix},
        )
    return token


_TOKEN_FIELDS = {"id", "user_id", "expires_at", "revoked_at", "last_used_at"}


def _token_with_user(digest: str) -> ApiToken | None:
    """The token of `digest` with its user, in one round trip. On PostgreSQL the query is plain
    SQL: compiling the ORM's join costs more than the query itself on every authenticated
    request (psycopg returns the values ready to use; SQLite's need the ORM's converters)."""
    if connection.vendor != "postgresql":
        return ApiToken.objects.select_related("user").filter(token_hash=digest).first()
    user_model = get_user_model()
    # from_db() takes a subset of fields in the model's field order.
    token_fields = [f for f in ApiToken._meta.concrete_fields if f.attname in _TOKEN_FIELDS]
    user_fields = list(user_model._meta.concrete_fields)
    quote = connection.ops.quote_name
    columns = [f"t.{quote(f.column)}" for f in token_fields]
    columns += [f"u.{quote(f.column)}" for f in user_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(ApiToken._meta.db_table)} t "
        f"JOIN {quote(user_model._meta.db_table)} u "
        f"ON u.{quote(user_model._meta.pk.column)} = t.{quote('user_id')} "
        "WHERE t.token_hash = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [digest])
        found = cursor.fetchone()
    if found is None:
        return None
    split = len(token_fields)
    token = ApiToken.from_db(DEFAULT_DB_ALIAS, [f.attname for f in token_fields], found[:split])
    token.user = user_model.from_db(
        DEFAULT_DB_ALIAS, [f.attname for f in user_fields], found[split:]
    )
    return token


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer ts_…`; any other bearer value is left to the JWT class."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            return None
        if not parts[1].startswith(TOKEN_PREFIX.encode()):
            return None
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raw = ""
        row = _token_with_user(token_hash(raw)) if raw else None
        now = timezone.now()
        if (
            row is None
            or row.revoked_at is not None
            or (row.expires_at is not None and row.expires_at <= now)
            or not row.user.is_active
        ):
            AUTH_FAILURES.labels(endpoint="api_token").inc()
            raise AuthenticationFailed(_REFUSED, code="token_not_valid")
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        return row.user, row

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tradingsite.security.api_tokens.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (ts_…), for scripts and MLflow clients.",
        }
