"""`make run`'s profile as processes: daphne + `celery worker -B --pool=solo` on the filesystem
broker, SQLite, no servers. Beat must really schedule tasks that a worker really runs."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support import PYTHON, ROOT, clean_env, free_port, manage, stop_process, wait_for_port

pytestmark = pytest.mark.slow
PASSWORD = "embedded-Profile-pass-1"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    var = tmp_path_factory.mktemp("embedded")
    env = clean_env(
        TRADINGSITE_VAR_DIR=str(var),
        DATABASE_URL=f"sqlite:///{var / 'db.sqlite3'}",
        SCHEDULER_HEARTBEAT_SECONDS="60",  # the first one is sent when beat starts
        DRIFT_INTERVAL_SECONDS="2",
        OPS_PASSWORD=PASSWORD,
    )
    assert manage("migrate", "--noinput", env=env).returncode == 0
    ops = ("create_api_user", "ops", "--password-env", "OPS_PASSWORD", "--role", "analyst")
    assert manage(*ops, env=env).returncode == 0
    port = free_port()
    worker = _spawn(
        ["-m", "celery", "-A", "tradingsite", "worker", "-B", "--pool=solo",
         "--without-mingle", "--without-gossip", "--without-heartbeat",
         "--schedule", str(var / "beat-schedule"), "--loglevel=INFO"],
        env, var / "worker.log",
    )  # fmt: skip
    server = _spawn(
        ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tradingsite.asgi:application"],
        env,
        var / "server.log",
    )
    try:
        wait_for_port(port, server)
        yield {"url": f"http://127.0.0.1:{port}", "var": var}
    finally:
        for proc in (server, worker):
            stop_process(proc)


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, *args], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def _token(url: str) -> str:
    response = requests.post(
        f"{url}/api/v1/auth/token/", json={"username": "ops", "password": PASSWORD}, timeout=5
    )
    assert response.status_code == 200, response.text
    return response.json()["access"]


def test_liveness_answers(embedded: dict[str, object]) -> None:
    response = requests.get(f"{embedded['url']}/health", timeout=5)
    assert response.status_code == 200
    assert "circuit_breakers" in response.json()


def test_beat_and_worker_run_scheduled_tasks_without_a_broker_server(
    embedded: dict[str, object],
) -> None:
    url = str(embedded["url"])
    headers = {"Authorization": f"Bearer {_token(url)}"}
    deadline = time.monotonic() + 45
    body: dict = {}
    while time.monotonic() < deadline:
        body = requests.get(f"{url}/api/v1/health", headers=headers, timeout=5).json()
        if body["services"]["scheduler"]["status"] == "ok":
            break
        time.sleep(0.5)
    log = (Path(str(embedded["var"])) / "worker.log").read_text()
    assert body["services"]["scheduler"]["status"] == "ok", (body, log[-2000:])
    assert body["services"]["broker"]["backend"] == "filesystem"
    assert body["services"]["channel_layer"]["backend"] == "InMemoryChannelLayer"
    assert body["status"] == "ok"


def test_the_drift_monitor_scans_on_its_interval(embedded: dict[str, object]) -> None:
    url = str(embedded["url"])
    headers = {"Authorization": f"Bearer {_token(url)}"}
    deadline = time.monotonic() + 45
    monitor: dict = {}
    while time.monotonic() < deadline:
        monitor = requests.get(f"{url}/api/v1/ml/status", headers=headers, timeout=5).json()[
            "drift_monitor"
        ]
        if monitor["scans_total"] >= 2:
            break
        time.sleep(0.5)
    assert monitor["scans_total"] >= 2, monitor
    assert monitor["last_scan"]["detail"] == "no models in PRODUCTION"
    log = (Path(str(embedded["var"])) / "worker.log").read_text()
    assert "Drift scan complete" in log


def test_the_server_logs_a_startup_banner(embedded: dict[str, object]) -> None:
    log = (Path(str(embedded["var"])) / "server.log").read_text()
    assert "tradingsite started: environment=development features=0 views=0" in log
