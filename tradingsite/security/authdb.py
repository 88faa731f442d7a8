"""The per-request token check on PostgreSQL: one persistent connection, one round trip.

Every authenticated request needs the user row and whether the token's jti is revoked, and the
database is the authority for both (revocation and deactivation take effect on the next request
on every worker, reliability.md T10). This process-wide connection answers that one query
without touching the request thread's own connection, so a request that needs nothing else
from the database (the online feature lookup) opens no transaction and no checkout at all.

Used only outside transactions: inside one (tests, ATOMIC_REQUESTS) the caller's connection must
see its own uncommitted rows, so the ORM answers instead. Any error closes the connection, and
the ORM path answers for a second before the next reconnect attempt.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection

from tradingsite.models import RevokedToken

logger = logging.getLogger(__name__)
RETRY_AFTER_FAILURE_SECONDS = 1.0


class _AuthConnection:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._pid = 0
        self._failed_at = 0.0
        self._sql = ""
        self._attnames: list[str] = []

    def usable(self) -> bool:
        return connection.vendor == "postgresql" and not connection.in_atomic_block

    def user_and_revoked(self, *, user_id: Any, jti: str) -> tuple[Any | None, bool] | None:
        """(user or None, jti revoked?), or None when this path is unavailable right now."""
        if time.monotonic() - self._failed_at < RETRY_AFTER_FAILURE_SECONDS:
            return None
        try:
            with self._lock:
                conn = self._connection()
                row = conn.execute(self._sql, (jti, user_id)).fetchone()
        except psycopg.Error as exc:
            logger.warning("token check connection failed (%s); using the ORM", exc)
            self.close(failed=True)
            return None
        if row is None:
            return None, False
        user = get_user_model().from_db(DEFAULT_DB_ALIAS, self._attnames, row[:-1])
        return user, bool(row[-1])

    def close(self, *, failed: bool = False) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            if failed:
                self._failed_at = time.monotonic()

    def _connection(self) -> psycopg.Connection:
        if self._conn is not None and self._pid == os.getpid() and not self._conn.closed:
            return self._conn
        # A forked child (gunicorn --preload) never uses its parent's socket.
        db = settings.DATABASES[DEFAULT_DB_ALIAS]
        params = {
            "dbname": db["NAME"],
            "user": db["USER"] or None,
            "password": db["PASSWORD"] or None,
            "host": db["HOST"] or None,
            "port": db["PORT"] or None,
            "connect_timeout": db["OPTIONS"].get("connect_timeout", 2),
            "autocommit": True,
            "application_name": "tradingsite-auth",
        }
        self._conn = psycopg.connect(**{k: v for k, v in params.items() if v is not None})
        self._pid = os.getpid()
        if not self._sql:
            self._sql, self._attnames = _user_query()
        return self._conn


def _user_query() -> tuple[str, list[str]]:
    model = get_user_model()
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(f"u.{quote(f.column)}" for f in fields)
    sql = (
        f"SELECT {columns}, EXISTS (SELECT 1 FROM {quote(RevokedToken._meta.db_table)} r "
        f"WHERE r.{quote('jti')} = %s) "
        f"FROM {quote(model._meta.db_table)} u WHERE u.{quote(model._meta.pk.column)} = %s"
    )
    return sql, [f.attname for f in fields]


auth_connection = _AuthConnection()
