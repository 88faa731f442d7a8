"""A lease that keeps two workers from computing the same (model version, window).

It only saves work. A lease can be outlived by a paused holder (reliability.md §1.5), and the
in-process cache of the embedded profile is per process, so correctness never rests on it: the
unique constraint on DriftReport(model_version, window_start) is the fence. For the same reason a
lock store that fails (Redis down) means "go ahead", not "stop".
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.core.cache import cache, caches
from django_redis import get_redis_connection
from django_redis.cache import RedisCache

logger = logging.getLogger(__name__)


def scan_lock_key(version_id: int, window_start: datetime) -> str:
    return f"drift:scan-lock:{version_id}:{int(window_start.timestamp())}"


def scan_lock_break(version_id: int, window_start: datetime) -> None:
    """Drop the lease on (version, window) whoever holds it: only for a holder known dead (a
    redelivered task whose earlier attempt was killed, drift.tasks). The database still fences."""
    cache.delete(scan_lock_key(version_id, window_start))  # scan_lock stores under make_key(key)


@contextlib.contextmanager
def scan_lock(version_id: int, window_start: datetime) -> Iterator[bool | None]:
    """Yields True (held: do the work), False (another worker holds it: do nothing) or None (the
    lock store is unavailable: do the work, the database fences)."""
    key = scan_lock_key(version_id, window_start)
    ttl = settings.DRIFT_SCAN_LOCK_SECONDS
    token = secrets.token_hex(8)
    redis_lock = None
    try:
        if isinstance(caches["default"], RedisCache):
            # redis-py's Lock: SET NX PX to take it, a Lua compare-and-delete to release, so an
            # expired lease never deletes the next holder's lock.
            redis_lock = get_redis_connection("default").lock(
                cache.make_key(key), timeout=ttl, blocking=False
            )
            held: bool | None = bool(redis_lock.acquire(token=token))
        else:
            held = bool(cache.add(key, token, timeout=ttl))
    except Exception as exc:  # the lock only saves work
        logger.warning("drift scan lock unavailable (%s); the database fences", exc)
        held, redis_lock = None, None
    try:
        yield held
    finally:
        if held:
            _release(key, token, redis_lock)


def _release(key: str, token: str, redis_lock: object) -> None:
    try:
        if redis_lock is not None:
            redis_lock.release()  # type: ignore[attr-defined]
        elif cache.get(key) == token:
            cache.delete(key)
    except Exception as exc:  # expired and taken over, or Redis gone: the lease lapses anyway
        logger.info("drift scan lock %s not released: %s", key, exc)
