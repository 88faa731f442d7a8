"""/metrics answers the scraper only: allow-listed peers or the metrics token (reliability T15)."""

from __future__ import annotations

import ipaddress
import subprocess
from typing import Any

import pytest
from django.test import Client

from tests.support import PYTHON, ROOT, clean_env
from tests.tradingsite.production_settings import (
    apply_production_response_settings,
    production_settings,
)
from tradingsite.management.commands.validate_deployment import Validator

STRANGER = "203.0.113.9"  # TEST-NET-3: never on an allow-list
TOKEN = "metrics-" + "Tk9q" * 8


def get_metrics(*, peer: str = "127.0.0.1", **headers: str) -> Any:
    return Client(REMOTE_ADDR=peer).get("/metrics", **headers)


def test_a_loopback_peer_reads_the_exposition() -> None:
    response = get_metrics()
    assert response.status_code == 200
    assert b"tradingsite_http_requests_total" in response.content


def test_a_peer_off_the_allow_list_gets_an_empty_404() -> None:
    response = get_metrics(peer=STRANGER)
    assert response.status_code == 404
    assert response.content == b""


def test_production_refuses_an_anonymous_stranger_and_admits_loopback(settings: Any) -> None:
    production = apply_production_response_settings(settings)
    assert production["METRICS_ALLOWED_IPS"] == ["127.0.0.1", "::1"]
    assert production["METRICS_TOKEN"] == ""
    # Plain HTTP on purpose: the scraper does not go through the TLS proxy.
    assert get_metrics(peer=STRANGER).status_code == 404
    assert get_metrics(peer="127.0.0.1").status_code == 200
    assert get_metrics(peer="::ffff:127.0.0.1").status_code == 200


def test_the_token_admits_any_peer_and_a_wrong_one_admits_none(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    assert get_metrics(peer=STRANGER, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert get_metrics(peer=STRANGER, HTTP_AUTHORIZATION="Bearer guessed").status_code == 404
    assert get_metrics(peer="127.0.0.1", HTTP_AUTHORIZATION="Bearer guessed").status_code == 404
    assert get_metrics(peer=STRANGER, HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 404


def test_without_a_configured_token_a_bearer_header_admits_nobody(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert get_metrics(peer=STRANGER, HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_an_allowed_network_admits_its_peers(settings: Any) -> None:
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    assert get_metrics(peer="10.20.30.40").status_code == 200
    assert get_metrics(peer="127.0.0.1").status_code == 404


def test_a_forged_forwarded_for_does_not_help_without_a_trusted_proxy(settings: Any) -> None:
    settings.NUM_PROXIES = 0
    assert get_metrics(peer=STRANGER, HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 404


def test_behind_a_proxy_the_client_address_decides_not_the_proxy(settings: Any) -> None:
    settings.NUM_PROXIES = 1
    # The proxy runs on loopback; the client it forwards is a stranger.
    assert get_metrics(peer="127.0.0.1", HTTP_X_FORWARDED_FOR=STRANGER).status_code == 404


def test_metrics_only_answers_safe_methods() -> None:
    assert Client().post("/metrics").status_code == 405


def test_a_malformed_allow_list_stops_the_process_at_startup() -> None:
    env = clean_env(METRICS_ALLOWED_IPS="127.0.0.1,not-a-network")
    result = subprocess.run(
        [PYTHON, "-c", "import tradingsite.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "METRICS_ALLOWED_IPS" in result.stderr


def test_the_production_allow_list_comes_from_the_environment() -> None:
    production = production_settings(METRICS_ALLOWED_IPS="10.0.0.0/8, 192.0.2.7")
    assert production["METRICS_ALLOWED_NETWORKS"] == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
    )


@pytest.mark.django_db
def test_a_refused_peer_is_still_refused_with_the_database_available() -> None:
    # Also runs in the PostgreSQL + Redis pass (a `django_db` test).
    assert get_metrics(peer=STRANGER).status_code == 404
    assert get_metrics().status_code == 200


@pytest.mark.django_db(transaction=True)
def test_validate_deployment_uses_the_metrics_token_from_off_the_allow_list(
    live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ()  # the validating host is not allow-listed
    settings.METRICS_TOKEN = TOKEN
    validator = Validator(base_url=live_server.url, timeout=5, forwarded_https=False)

    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    refused = validator.run("metrics", validator.check_metrics, None)
    assert not refused.passed
    assert "METRICS_ALLOWED_IPS" in refused.detail and "METRICS_TOKEN" in refused.detail

    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    assert validator.run("metrics", validator.check_metrics, None).passed
