"""SLO series: request latency and outcome per route class (seed §12).

Every response is counted in `tradingsite_http_requests_total{route_class, method, outcome}` and
timed in `tradingsite_http_request_duration_seconds{route_class, method}`, from the middleware
right after django-prometheus' first one to the response (time to the first byte for streamed
downloads). The route class is a small fixed set, so label cardinality stays bounded whatever
paths clients send:

| class     | requests                                                           | p99 target |
|-----------|--------------------------------------------------------------------|-----------:|
| health    | GET /health (liveness, no I/O)                                     |      50 ms |
| online    | GET /api/v1/feature-views/<name>/online (online store lookup)      |      50 ms |
| static    | /static/ (whitenoise)                                              |      50 ms |
| predict   | POST /api/v1/models/<name>/predict                                 |     100 ms |
| read      | other /api/ requests with a safe method (GET, HEAD, OPTIONS)       |     250 ms |
| mlflow    | /api/2.0/ and /api/3.0/ (MLflow-compatible tracking)               |     250 ms |
| metrics   | GET /metrics (the Prometheus scrape)                               |     250 ms |
| write     | other /api/ requests with an unsafe method                         |     500 ms |
| auth      | /api/v1/auth/ (tokens: password hashing), admin and dashboard login |     500 ms |
| dashboard | /dashboard/ and / (server-rendered pages)                          |       1 s  |
| admin     | /admin/                                                            |       1 s  |
| other     | anything else (unknown paths: scanners)                            |         -  |

The class comes from the resolved view's name when Django resolved one (read from
`request.resolver_match` after the view ran: no extra URL matching), else from the path's
prefix: a request refused before URL resolution (429 from the rate limiter, the HTTPS redirect)
still lands in its class. The p99 targets are the reliability tests' (T4) and are bucket edges
of the histogram; deploy/prometheus/alerts.yml alerts on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from tradingsite.observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

SLO_SECONDS: dict[str, float] = {
    "health": 0.05,
    "online": 0.05,
    "static": 0.05,
    "predict": 0.1,
    "read": 0.25,
    "mlflow": 0.25,
    "metrics": 0.25,
    "write": 0.5,
    "auth": 0.5,
    "dashboard": 1.0,
    "admin": 1.0,
}
ROUTE_CLASSES = (*SLO_SECONDS, "other")
OUTCOMES = ("success", "client_error", "server_error", "throttled")

# Resolved views whose class their path prefix does not tell (full `namespace:name`).
VIEW_NAME_CLASSES = {
    "health": "health",
    "metrics": "metrics",
    "model-predict": "predict",
    "online": "online",
    "admin:login": "auth",
    "dashboard:login": "auth",
    "home": "dashboard",
}
# Checked in order with str.startswith, after the view name.
PATH_PREFIX_CLASSES = (
    ("/health", "health"),
    ("/metrics", "metrics"),
    ("/static/", "static"),
    ("/api/v1/auth/", "auth"),
    ("/api/2.0/", "mlflow"),
    ("/api/3.0/", "mlflow"),
    ("/admin/", "admin"),
    ("/dashboard/", "dashboard"),
)
# Suffixes of API routes with their own class, for requests refused before URL resolution.
API_SUFFIX_CLASSES = (("/predict", "predict"), ("/online", "online"))
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KNOWN_METHODS = SAFE_METHODS | {"POST", "PUT", "PATCH", "DELETE"}


def route_class(request: HttpRequest) -> str:
    """The SLO class of a request (one of ROUTE_CLASSES); see the module docstring."""
    match = request.resolver_match
    if match is not None and (klass := VIEW_NAME_CLASSES.get(match.view_name)):
        return klass
    path = request.path
    for prefix, klass in PATH_PREFIX_CLASSES:
        if path.startswith(prefix):
            return klass
    if path.startswith("/api/"):
        if match is None:
            for suffix, klass in API_SUFFIX_CLASSES:
                if path.endswith(suffix):
                    return klass
        return "read" if request.method in SAFE_METHODS else "write"
    return "dashboard" if path == "/" else "other"


def outcome(status_code: int) -> str:
    """success (1xx-3xx), throttled (429), client_error (other 4xx), server_error (5xx)."""
    if status_code == 429:
        return "throttled"
    if status_code >= 500:
        return "server_error"
    return "client_error" if status_code >= 400 else "success"


def method_label(method: str | None) -> str:
    """The HTTP method, or `other` for anything unusual (bounded label values)."""
    return method if method in KNOWN_METHODS else "other"  # type: ignore[return-value]


_timers: dict[tuple[str, str], Any] = {}


def observe(request: HttpRequest, status_code: int, duration_seconds: float) -> None:
    klass, method = route_class(request), method_label(request.method)
    timer = _timers.get((klass, method))
    if timer is None:  # a labelled child per (class, method), looked up once per process
        timer = _timers[(klass, method)] = HTTP_REQUEST_DURATION.labels(klass, method)
    timer.observe(duration_seconds)
    HTTP_REQUESTS.labels(klass, method, outcome(status_code)).inc()


class SloMetricsMiddleware:
    """Times and counts every response; sits right after PrometheusBeforeMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        observe(request, response.status_code, time.perf_counter() - started)
        return response
