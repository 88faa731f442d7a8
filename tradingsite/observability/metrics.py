"""Platform-level Prometheus metrics (the apps keep their domain metrics in <app>/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

AUTH_TOKENS_ISSUED = Counter(
    "tradingsite_auth_tokens_issued_total", "JWT pairs issued, by grant", ["grant"]
)
AUTH_FAILURES = Counter(
    "tradingsite_auth_failures_total", "Rejected logins and refreshes, by endpoint", ["endpoint"]
)
TOKENS_REVOKED = Counter(
    "tradingsite_tokens_revoked_total", "Tokens revoked through the API, by type", ["token_type"]
)
RATE_LIMITED = Counter(
    "tradingsite_rate_limited_total", "Requests refused with 429, by route class", ["route_class"]
)
RATE_LIMIT_FALLBACKS = Counter(
    "tradingsite_rate_limit_fallback_total",
    "Rate-limit decisions taken by the in-process limiter because the shared cache failed",
)
CIRCUIT_STATE = Gauge(
    "tradingsite_circuit_breaker_state",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open",
    ["dependency"],
    multiprocess_mode="max",
)
SERVICE_UP = Gauge(
    "tradingsite_service_up",
    "1 when the last health check of the service passed",
    ["service"],
    multiprocess_mode="min",
)
SERVICE_LATENCY = Gauge(
    "tradingsite_service_check_latency_seconds",
    "Latency of the last health check of the service",
    ["service"],
    multiprocess_mode="max",
)
EVENTS_PUBLISHED = Counter(
    "tradingsite_events_published_total", "Events written to the outbox, by topic", ["topic"]
)
EVENTS_DELIVERED = Counter(
    "tradingsite_events_delivered_total", "Events sent to websocket clients, by topic", ["topic"]
)
WEBSOCKET_CLIENTS = Gauge(
    "tradingsite_websocket_clients",
    "Websocket clients connected to /ws/stream",
    multiprocess_mode="livesum",
)
