"""The production profile as processes: gunicorn + uvicorn workers (the Docker command) on real
PostgreSQL and Redis, HTTPS redirect and HSTS, JSON logs; and a dead database -> fast 503."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests

from tests.support import (
    PYTHON,
    ROOT,
    free_port,
    manage,
    postgres_database,
    production_env,
    start_daphne,
    stop_process,
    wait_for_port,
)

HTTPS = {"X-Forwarded-Proto": "https"}
PASSWORD = "production-Profile-pass-1"


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    tmp = tmp_path_factory.mktemp("production")
    database_url = "postgresql://postgres@127.0.0.1:5432/tradingsite_e2e"
    postgres_database(database_url)
    multiproc = tmp / "prometheus"
    multiproc.mkdir()
    env = production_env(
        DATABASE_URL=database_url,
        TRADINGSITE_VAR_DIR=str(tmp),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        WORKERS="2",
        OPS_PASSWORD=PASSWORD,
    )
    for args in (
        ("migrate", "--noinput"),
        ("create_api_user", "ops", "--password-env", "OPS_PASSWORD", "--role", "analyst"),
    ):
        result = manage(*args, env=env)
        assert result.returncode == 0, result.stderr
    port = free_port()
    log = tmp / "server.log"
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "tradingsite.asgi:application", "-k",
         "uvicorn_worker.UvicornWorker", "--preload", "-w", env["WORKERS"],
         "-b", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, server)
        yield {"url": f"http://127.0.0.1:{port}", "log": log}
    finally:
        stop_process(server)


def _token(url: str) -> str:
    response = requests.post(
        f"{url}/api/v1/auth/token/",
        json={"username": "ops", "password": PASSWORD},
        headers=HTTPS,
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["access"]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
class TestProductionProfile:
    def test_liveness_answers_over_plain_http_for_probes(self, production: dict) -> None:
        response = requests.get(f"{production['url']}/health", timeout=5, allow_redirects=False)
        assert response.status_code == 200
        assert response.json()["environment"] == "production"

    def test_plain_http_is_redirected_to_https(self, production: dict) -> None:
        response = requests.get(
            f"{production['url']}/api/v1/ml/status", timeout=5, allow_redirects=False
        )
        assert response.status_code == 301
        assert response.headers["Location"].startswith("https://")

    def test_https_responses_carry_hsts_and_hardening_headers(self, production: dict) -> None:
        response = requests.get(f"{production['url']}/api/v1/ml/status", headers=HTTPS, timeout=5)
        assert response.status_code == 401
        assert response.headers["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains; preload"
        )
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"

    def test_every_service_runs_on_postgres_and_redis(self, production: dict) -> None:
        url = production["url"]
        headers = {**HTTPS, "Authorization": f"Bearer {_token(url)}"}
        services = requests.get(f"{url}/api/v1/health", headers=headers, timeout=5).json()[
            "services"
        ]
        assert (services["database"]["status"], services["database"]["backend"]) == (
            "ok",
            "postgresql",
        )
        assert (services["cache"]["status"], services["cache"]["backend"]) == ("ok", "redis")
        assert (services["broker"]["status"], services["broker"]["backend"]) == ("ok", "redis")
        assert services["channel_layer"]["status"] == "ok"
        assert services["channel_layer"]["backend"] == "RedisChannelLayer"

    def test_metrics_aggregate_across_workers(self, production: dict) -> None:
        for _ in range(6):
            requests.get(f"{production['url']}/health", timeout=5)
        text = requests.get(f"{production['url']}/metrics", timeout=5).text
        assert "django_http_requests_total_by_method_total" in text

    def test_logs_are_json_lines_with_a_startup_banner(self, production: dict) -> None:
        requests.get(f"{production['url']}/health", timeout=5)
        time.sleep(0.3)
        lines = Path(production["log"]).read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert any(r["message"].startswith("tradingsite started") for r in records)
        assert any(r.get("path") == "/health" and r.get("request_id") for r in records)


@pytest.mark.slow
def test_a_dead_database_gives_a_fast_503_while_liveness_stays_up(tmp_path: Path) -> None:
    secret = "jwt-" + "Zx81" * 10
    env = production_env(
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere",  # nothing listens on port 1
        JWT_SECRET=secret,
        TRADINGSITE_VAR_DIR=str(tmp_path),
        ENVIRONMENT="development",
        REDIS_URL="",
    )
    port = free_port()
    server = start_daphne(port, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    token = jwt.encode(
        {"token_type": "access", "exp": int(time.time()) + 300, "jti": "a" * 32, "user_id": 1},
        secret,
        algorithm="HS256",
    )
    try:
        wait_for_port(port, server)
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/health", timeout=5).status_code == 200
        started = time.monotonic()
        response = requests.get(
            f"{url}/api/v1/health", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert time.monotonic() - started < 1.5
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json()["code"] == "unavailable"
    finally:
        stop_process(server)
