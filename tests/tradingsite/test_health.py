"""/health (liveness), /api/v1/health (service matrix) and /api/v1/ml/status."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from drift.services import drift_scan_all
from features.models import FeatureDefinition, FeatureView
from tradingsite.models import SchedulerHeartbeat
from tradingsite.security.breakers import get_breaker

pytestmark = pytest.mark.django_db

DEAD_REDIS_CACHE = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
    }
}


def test_liveness_needs_no_token_and_shows_the_breakers() -> None:
    response = Client().get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["circuit_breakers"]) == {"database", "cache", "broker"}
    assert body["circuit_breakers"]["database"]["state"] == "closed"


def test_liveness_reports_an_open_breaker_as_degraded_but_stays_200() -> None:
    breaker = get_breaker("cache")
    for _ in range(breaker.failure_threshold):
        breaker.record_failure(ConnectionError("down"))
    response = Client().get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["circuit_breakers"]["cache"]["state"] == "open"


def test_the_service_matrix_lists_every_service_with_latency(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/health")
    assert response.status_code == 200
    services = response.json()["services"]
    assert set(services) == {"database", "cache", "broker", "channel_layer", "scheduler"}
    for name in ("database", "cache", "broker", "channel_layer"):
        assert services[name]["status"] == "ok", services[name]
        assert services[name]["latency_ms"] >= 0


def test_no_scheduler_heartbeat_is_degraded_not_an_error(api_client: APIClient) -> None:
    body = api_client.get("/api/v1/health").json()
    assert body["services"]["scheduler"]["status"] == "degraded"
    assert body["status"] == "degraded"


def test_a_fresh_heartbeat_makes_everything_ok(api_client: APIClient) -> None:
    SchedulerHeartbeat.objects.create(name="beat", last_beat_at=timezone.now())
    body = api_client.get("/api/v1/health").json()
    assert body["services"]["scheduler"]["status"] == "ok"
    assert body["status"] == "ok"


def test_a_stale_heartbeat_is_degraded(api_client: APIClient, settings: Any) -> None:
    then = timezone.now() - timezone.timedelta(seconds=10 * settings.SCHEDULER_HEARTBEAT_SECONDS)
    SchedulerHeartbeat.objects.create(name="beat", last_beat_at=then)
    scheduler = api_client.get("/api/v1/health").json()["services"]["scheduler"]
    assert scheduler["status"] == "degraded"
    assert "s ago" in scheduler["detail"]


def test_a_dead_cache_is_degraded_and_never_a_5xx(api_client: APIClient) -> None:
    with override_settings(CACHES=DEAD_REDIS_CACHE, REDIS_URL="redis://127.0.0.1:1/0"):
        response = api_client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["services"]["cache"]["status"] == "down"
    assert response.json()["status"] == "degraded"


def test_repeated_cache_failures_open_its_breaker(api_client: APIClient) -> None:
    with override_settings(CACHES=DEAD_REDIS_CACHE, REDIS_URL="redis://127.0.0.1:1/0"):
        for _ in range(6):
            api_client.get("/api/v1/health")
        cache_status = api_client.get("/api/v1/health").json()["services"]["cache"]
    assert "circuit is open" in cache_status["detail"]
    assert Client().get("/health").json()["circuit_breakers"]["cache"]["state"] == "open"


def test_ml_status_counts_what_the_apps_hold(api_client: APIClient) -> None:
    feature = FeatureDefinition.objects.create(name="rsi_14")
    FeatureView.objects.create(name="core_technical", version=1).features.add(feature)
    FeatureView.objects.create(name="core_technical", version=2)
    drift_scan_all()
    body = api_client.get("/api/v1/ml/status").json()
    assert body["features"]["features"] == 1
    assert body["features"]["views"] == 1
    assert body["features"]["view_versions"] == 2
    assert body["features"]["default_view_registered"] is True
    assert body["drift_monitor"]["last_scan"]["detail"] == "no models in PRODUCTION"
    assert body["drift_monitor"]["next_scan_due"] is not None
    assert body["experiments"] == {
        "experiments": 0,
        "runs": 0,
        "runs_active": 0,
        "last_run_at": None,
    }
    assert body["registry"]["production_versions"] == 0


def test_the_home_page_needs_a_login_and_then_shows_the_counts(user: Any, password: str) -> None:
    client = Client()
    assert client.get("/").status_code == 302
    client.login(username=user.username, password=password)
    page = client.get("/").content.decode()
    assert "models in Production" in page
    assert "/static/tradingsite/site.css" in page
