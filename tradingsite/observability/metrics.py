"""Platform-level Prometheus metrics (the apps keep their domain metrics in <app>/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
CIRCUIT_TRANSITIONS = Counter(
    "tradingsite_circuit_breaker_transitions_total",
    "Circuit breaker state changes, by breaker and the state it entered",
    ["breaker", "to"],
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

# --- SLO series (tradingsite.observability.slo): one histogram and one counter per route class --
# Bucket edges include the SLO thresholds (50 ms liveness, 250 ms reads, 500 ms writes; see
# tradingsite.observability.slo.SLO_SECONDS) so "share of requests under the target" is exact.
HTTP_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
HTTP_REQUEST_DURATION = Histogram(
    "tradingsite_http_request_duration_seconds",
    "Time from the first middleware to the response, per route class and method",
    ["route_class", "method"],
    buckets=HTTP_LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "tradingsite_http_requests_total",
    "Responses per route class, method and outcome (success, client_error, server_error, "
    "throttled)",
    ["route_class", "method", "outcome"],
)
