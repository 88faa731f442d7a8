"""Fixed-window rate limiting per client IP and route class, before authentication runs.

Counting is `SET key 0 EX ttl NX` then `INCR key`, pipelined in one round trip on Redis (on the
in-process cache, `add` then `incr`, which lock): no read-then-write, so concurrent requests
cannot slip through. Every key carries a TTL, so Redis' volatile-lru eviction may drop them
safely. When the shared cache fails, an in-process limiter decides instead: each process then
enforces the limit on its own, which is looser across processes but never unlimited.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_redis import get_redis_connection
from django_redis.cache import RedisCache

from tradingsite.observability.metrics import RATE_LIMIT_FALLBACKS, RATE_LIMITED
from tradingsite.security.breakers import CircuitOpenError, get_breaker

logger = logging.getLogger(__name__)
_fallback_cache = LocMemCache("ratelimit-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
EXEMPT_PREFIXES = ("/health", "/metrics", "/static/")


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`"10/60"` -> 10 requests per 60 seconds."""
        count, _, window = text.partition("/")
        rate = cls(int(count), int(window or 60))
        if rate.limit < 1 or rate.window_seconds < 1:
            raise ValueError(f"bad rate {text!r}: both numbers must be positive")
        return rate


def client_ip(request: HttpRequest) -> str:
    """The client's address, trusting X-Forwarded-For only for NUM_PROXIES hops."""
    num_proxies = settings.NUM_PROXIES
    if num_proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= num_proxies:
            return hops[-num_proxies]  # the address our outermost trusted proxy saw
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def route_class(request: HttpRequest) -> str | None:
    path = request.path
    if path.startswith(EXEMPT_PREFIXES):
        return None
    if path.startswith("/api/v1/auth/") or (
        path.startswith(("/admin/login", "/dashboard/login")) and request.method == "POST"
    ):
        return "auth"
    if path.startswith("/api/2.0/"):
        return "tracking"  # training scripts log metrics one call at a time (MLflow's client)
    return "api"


def _shared_count(key: str, ttl: int) -> int:
    if isinstance(caches["default"], RedisCache):  # `cache` is a proxy: ask the backend
        # One round trip: create the window's key with its TTL if absent, then count.
        full_key = cache.make_key(key)
        pipe = get_redis_connection("default").pipeline(transaction=False)
        pipe.set(full_key, 0, ex=ttl, nx=True)
        pipe.incr(full_key)
        return int(pipe.execute()[1])
    cache.add(key, 0, timeout=ttl)
    return cache.incr(key)


def _count(key: str, ttl: int) -> int:
    try:
        # Through the cache breaker: with Redis frozen, only the calls until it opens wait for
        # the socket timeout; then the in-process limiter answers at once (reliability.md T5).
        return get_breaker("cache").call(lambda: _shared_count(key, ttl))
    except Exception as exc:  # Redis down, slow or its breaker open: decide locally, never open
        if not isinstance(exc, CircuitOpenError):  # an open breaker is on /health, not per request
            logger.warning("rate limit cache unavailable (%s); using in-process limiter", exc)
        RATE_LIMIT_FALLBACKS.inc()
        _fallback_cache.add(key, 0, timeout=ttl)
        return _fallback_cache.incr(key)


def rate_limit_hit(*, bucket: str, rate: Rate, now: float | None = None) -> tuple[bool, int]:
    """Count one request in `bucket`; returns (allowed, seconds until the window resets)."""
    now = time.time() if now is None else now
    window_start = int(now // rate.window_seconds) * rate.window_seconds
    count = _count(f"rl:{bucket}:{window_start}", rate.window_seconds + 1)
    retry_after = max(1, math.ceil(window_start + rate.window_seconds - now))
    return count <= rate.limit, retry_after


class RateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        klass = route_class(request)
        if klass is not None:
            rate = Rate.parse(settings.RATE_LIMITS[klass])
            allowed, retry_after = rate_limit_hit(bucket=f"{klass}:{client_ip(request)}", rate=rate)
            if not allowed:
                RATE_LIMITED.labels(route_class=klass).inc()
                response = JsonResponse(
                    {
                        "detail": f"Rate limit exceeded: {rate.limit} requests per "
                        f"{rate.window_seconds} s for {klass} routes. Retry in {retry_after} s.",
                        "code": "rate_limited",
                    },
                    status=429,
                )
                response["Retry-After"] = str(retry_after)
                return response
        return self.get_response(request)
