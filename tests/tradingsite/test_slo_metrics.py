"""SLO series: every response is timed and counted under its route class and outcome."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import include, path
from prometheus_client import REGISTRY

from tradingsite.observability.slo import ROUTE_CLASSES, SLO_SECONDS, outcome, route_class


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a view")


# ROOT_URLCONF for the server-error test: the project's routes plus one view that raises.
urlpatterns = [path("api/v1/boom", _boom), path("", include("tradingsite.urls"))]


def requests_counted(klass: str, method: str, result: str) -> float:
    labels = {"route_class": klass, "method": method, "outcome": result}
    return REGISTRY.get_sample_value("tradingsite_http_requests_total", labels) or 0.0


def requests_timed(klass: str, method: str) -> float:
    labels = {"route_class": klass, "method": method}
    return REGISTRY.get_sample_value("tradingsite_http_request_duration_seconds_count", labels) or 0


def assert_counted(
    client: Client, verb: str, url: str, klass: str, result: str, **extra: Any
) -> HttpResponse:
    method = verb.upper()
    before = requests_counted(klass, method, result), requests_timed(klass, method)
    response = getattr(client, verb)(url, **extra)
    after = requests_counted(klass, method, result), requests_timed(klass, method)
    assert after == (before[0] + 1, before[1] + 1), (url, response.status_code)
    return response


def test_the_slo_middleware_times_from_right_after_the_first_middleware() -> None:
    assert settings.MIDDLEWARE[0] == "django_prometheus.middleware.PrometheusBeforeMiddleware"
    assert settings.MIDDLEWARE[1] == "tradingsite.observability.slo.SloMetricsMiddleware"


def test_liveness_is_counted_as_a_successful_health_request() -> None:
    before = REGISTRY.get_sample_value(
        "tradingsite_http_request_duration_seconds_sum", {"route_class": "health", "method": "GET"}
    )
    assert_counted(Client(), "get", "/health", "health", "success")
    after = REGISTRY.get_sample_value(
        "tradingsite_http_request_duration_seconds_sum", {"route_class": "health", "method": "GET"}
    )
    assert after > (before or 0.0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("verb", "url", "klass", "result"),
    [
        ("get", "/api/v1/ml/status", "read", "client_error"),  # anonymous: 401
        ("post", "/api/v1/drift/scan", "write", "client_error"),
        ("post", "/api/v1/auth/token/", "auth", "client_error"),  # no credentials: 400
        ("post", "/api/v1/models/m/predict", "predict", "client_error"),
        ("get", "/api/v1/feature-views/core_technical/online", "online", "client_error"),
        ("get", "/api/2.0/mlflow/experiments/search", "mlflow", "client_error"),
        ("get", "/admin/", "admin", "success"),  # 302 to the login page
        ("get", "/dashboard/", "dashboard", "success"),
        ("get", "/", "dashboard", "success"),
        ("get", "/metrics", "metrics", "success"),
        ("get", "/wp-login.php", "other", "client_error"),
    ],
)
def test_each_route_is_counted_under_its_class(
    verb: str, url: str, klass: str, result: str
) -> None:
    assert_counted(Client(), verb, url, klass, result)


@pytest.mark.django_db
def test_a_throttled_request_keeps_its_class_although_it_never_reached_a_view(
    settings: Any,
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": "1/60"}
    client = Client()
    assert_counted(client, "post", "/api/v1/models/m/predict", "predict", "client_error")
    response = assert_counted(client, "post", "/api/v1/models/m/predict", "predict", "throttled")
    assert response.status_code == 429
    assert_counted(client, "get", "/api/v1/ml/status", "read", "throttled")


@pytest.mark.django_db
def test_an_unhandled_exception_is_counted_as_a_server_error(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    response = assert_counted(client, "get", "/api/v1/boom", "read", "server_error")
    assert response.status_code == 500


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "success"),
        (204, "success"),
        (301, "success"),
        (304, "success"),
        (400, "client_error"),
        (404, "client_error"),
        (413, "client_error"),
        (429, "throttled"),
        (500, "server_error"),
        (503, "server_error"),
    ],
)
def test_outcome_of_a_status_code(status: int, expected: str) -> None:
    assert outcome(status) == expected


def test_a_request_refused_before_url_resolution_is_classed_by_its_path() -> None:
    factory = RequestFactory()
    cases = {
        ("get", "/static/dashboard/app.js"): "static",
        ("get", "/api/v1/models/m/versions/"): "read",
        ("head", "/api/v1/models/"): "read",
        ("delete", "/api/v1/auth/api-tokens/3"): "auth",
        ("patch", "/api/v1/runs/abc"): "write",
        ("get", "/api/v1/feature-views/v/online"): "online",
        ("get", "/dashboard/drift/"): "dashboard",
        ("get", "/.env"): "other",
    }
    for (verb, url), expected in cases.items():
        assert route_class(getattr(factory, verb)(url)) == expected, url


def test_every_class_but_other_has_an_slo_target() -> None:
    assert set(ROUTE_CLASSES) - set(SLO_SECONDS) == {"other"}


def test_an_unusual_method_does_not_grow_the_label_set() -> None:
    before = requests_counted("other", "other", "client_error")
    Client().generic("PROPFIND", "/nothing-here")
    assert requests_counted("other", "other", "client_error") == before + 1
