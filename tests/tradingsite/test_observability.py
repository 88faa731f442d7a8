"""Prometheus exposition, request ids and JSON log lines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils.log import configure_logging

pytestmark = pytest.mark.django_db


def test_metrics_expose_django_and_application_series(api_client: Any) -> None:
    api_client.get("/api/v1/ml/status")
    text = Client().get("/metrics").content.decode()
    assert "django_http_requests_total_by_method_total" in text
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in text
    assert "tradingsite_auth_tokens_issued_total" in text
    assert "process_" in text or "python_info" in text


def _auth_refusals(text: str) -> float:
    """tradingsite_rate_limited_total{route_class="auth"} in an exposition (0 when absent)."""
    rows = [
        row
        for row in text.splitlines()
        if row.startswith("tradingsite_rate_limited_total{") and 'route_class="auth"' in row
    ]
    return float(rows[0].split()[-1]) if rows else 0.0


def test_a_refused_request_is_counted(settings: Any) -> None:
    settings.RATE_LIMITS = {"auth": "1/60", "api": "1000/60"}
    client = Client()
    before = _auth_refusals(client.get("/metrics").content.decode())
    for _ in range(2):
        client.post("/api/v1/auth/token/", "{}", content_type="application/json")
    assert _auth_refusals(client.get("/metrics").content.decode()) == before + 1


def test_every_response_carries_a_request_id() -> None:
    response = Client().get("/health")
    assert len(response["X-Request-ID"]) == 32


def test_a_well_formed_incoming_request_id_is_kept() -> None:
    response = Client().get("/health", HTTP_X_REQUEST_ID="edge-proxy-1234abcd")
    assert response["X-Request-ID"] == "edge-proxy-1234abcd"


def test_a_hostile_incoming_request_id_is_replaced() -> None:
    response = Client().get("/health", HTTP_X_REQUEST_ID="x\r\nSet-Cookie: a=b")
    assert "Set-Cookie" not in response["X-Request-ID"]


def test_json_logs_are_one_object_per_line_with_the_request_id(
    settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    original = settings.LOGGING
    handler = original["handlers"]["stderr"]
    json_logging = {**original, "handlers": {"stderr": {**handler, "formatter": "json"}}}
    configure_logging(settings.LOGGING_CONFIG, json_logging)
    try:
        response = Client().get("/health")
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    finally:
        configure_logging(settings.LOGGING_CONFIG, original)
    records = [json.loads(line) for line in lines]
    access = next(r for r in records if r["logger"] == "tradingsite.access")
    assert access["request_id"] == response["X-Request-ID"]
    assert access["status"] == 200
    assert access["path"] == "/health"
    assert access["level"] == "INFO"
