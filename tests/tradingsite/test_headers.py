"""Production responses: HTTPS redirect, HSTS and hardening headers, cookie flags, no Server header,
no stack traces (reliability T2); request size, page size and the browsable API (T11, T15)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import global_settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path
from rest_framework.test import APIClient

from features.models import FeatureDefinition
from tests.support import PYTHON, ROOT, clean_env, free_port, stop_process, wait_for_port
from tests.tradingsite.production_settings import (
    apply_production_response_settings,
    production_settings,
)

HTTPS = {"HTTP_X_FORWARDED_PROTO": "https"}
SECRET_IN_THE_ERROR = "token=hunter2-in-a-local-variable"


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET_IN_THE_ERROR)


# ROOT_URLCONF for the 500 test: the project's routes plus one view that raises.
urlpatterns = [path("boom", _boom), path("", include("tradingsite.urls"))]


@pytest.fixture
def production(settings: Any) -> dict[str, Any]:
    return apply_production_response_settings(settings)


def assert_hardened(response: HttpResponse) -> None:
    hsts = response.headers["Strict-Transport-Security"]
    max_age = int(re.search(r"max-age=(\d+)", hsts).group(1))
    assert max_age >= 31536000
    assert "includeSubDomains" in hsts
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"]
    assert response.headers["Cross-Origin-Opener-Policy"]
    assert "Server" not in response.headers


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_except_the_probes(production: dict) -> None:
    response = Client().get("/api/v1/ml/status")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/v1/ml/status"
    assert Client().get("/health").status_code == 200  # load balancer probes speak plain HTTP


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/api/v1/ml/status", "/health", "/admin/login/", "/dashboard/login/", "/nowhere"]
)
def test_https_responses_carry_hsts_and_the_hardening_headers(production: dict, url: str) -> None:
    assert_hardened(Client().get(url, **HTTPS))


@pytest.mark.django_db
def test_session_and_csrf_cookies_are_secure_httponly_and_samesite(production: dict) -> None:
    get_user_model().objects.create_user("ops", password="an-Admin-pass-1", is_staff=True)
    client = Client()
    csrf = client.get("/admin/login/", **HTTPS).cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] in ("Lax", "Strict")
    response = client.post(
        "/admin/login/",
        {"username": "ops", "password": "an-Admin-pass-1", "next": "/admin/"},
        **HTTPS,
    )
    assert response.status_code == 302, response.content[:300]
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"]
    assert session["samesite"] in ("Lax", "Strict")


@pytest.mark.django_db
def test_a_404_in_production_shows_no_debug_page(production: dict) -> None:
    assert production["DEBUG"] is False
    response = Client().get("/api/v1/no-such-route", **HTTPS)
    assert response.status_code == 404
    body = response.content.decode()
    assert "URLconf" not in body and "Traceback" not in body and "tradingsite.urls" not in body


@pytest.mark.django_db
def test_a_500_in_production_shows_no_stack_trace(production: dict, settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    response = Client(raise_request_exception=False).get("/boom", **HTTPS)
    assert response.status_code == 500
    body = response.content.decode()
    assert "Traceback" not in body and "RuntimeError" not in body
    assert SECRET_IN_THE_ERROR not in body
    assert_hardened(response)


def _entrypoint_worker_class() -> str:
    """The gunicorn worker class the container's api role starts (-k in docker/entrypoint.sh)."""
    text = (ROOT / "docker" / "entrypoint.sh").read_text()
    return re.search(r"-k\s+(\S+)", text).group(1)


@pytest.mark.slow
def test_the_production_server_sends_no_server_header(tmp_path: Path) -> None:
    # The embedded profile is enough here: the header comes from the server, not from Django.
    port = free_port()
    env = clean_env(TRADINGSITE_VAR_DIR=str(tmp_path))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    args = ["-k", _entrypoint_worker_class(), "-w", "1", "-b", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "tradingsite.asgi:application", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server, timeout=60)
        response = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
    finally:
        stop_process(server)
    assert response.status_code == 200
    assert "Server" not in response.headers


# --- request size, page size, browsable API -------------------------------------------------------


def test_production_limits_request_bodies_and_pages() -> None:
    production = production_settings()
    assert production["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 16 * 1024 * 1024
    fields = production.get(
        "DATA_UPLOAD_MAX_NUMBER_FIELDS", global_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    )
    assert fields is not None and fields <= 1000
    files = production.get(
        "DATA_UPLOAD_MAX_NUMBER_FILES", global_settings.DATA_UPLOAD_MAX_NUMBER_FILES
    )
    assert files is not None and files <= 100
    drf = production["REST_FRAMEWORK"]
    assert drf["DEFAULT_PAGINATION_CLASS"] == "tradingsite.pagination.BoundedLimitOffsetPagination"
    assert production["API_MAX_PAGE_SIZE"] == 1000


def test_production_serves_no_browsable_api() -> None:
    renderers = production_settings()["REST_FRAMEWORK"]["DEFAULT_RENDERER_CLASSES"]
    assert renderers == ["rest_framework.renderers.JSONRenderer"]


@pytest.mark.django_db
def test_a_limit_above_the_maximum_page_size_is_capped(
    api_client: APIClient, settings: Any
) -> None:
    settings.API_MAX_PAGE_SIZE = 2
    FeatureDefinition.objects.bulk_create(FeatureDefinition(name=f"feature_{i}") for i in range(3))
    body = api_client.get("/api/v1/features/?limit=100000").json()
    assert len(body["results"]) == 2
    assert body["next"] is not None


@pytest.mark.django_db
def test_an_oversized_body_is_refused_without_a_server_error(api_client: APIClient) -> None:
    body = b'{"bars": "' + b"x" * (16 * 1024 * 1024) + b'"}'
    response = api_client.post("/api/v1/market/bars", body, content_type="application/json")
    assert response.status_code in (400, 413), response.status_code


@pytest.mark.django_db
def test_too_many_form_fields_are_refused_without_a_server_error() -> None:
    fields = {f"f{i}": "x" for i in range(global_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = Client(raise_request_exception=False).post("/admin/login/", fields)
    assert response.status_code == 400
