"""A real websocket client against a running daphne, with the Celery worker (another process)
publishing: embedded (SQLite, outbox relay) and Redis (PostgreSQL + channels-redis) profiles."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
import websockets
from websockets.exceptions import InvalidStatus

from tests.support import (
    PYTHON,
    ROOT,
    clean_env,
    free_port,
    manage,
    start_daphne,
    stop_process,
    wait_for_port,
)

pytestmark = pytest.mark.slow
PASSWORD = "stream-Profile-pass-1"
JWT_SECRET = "e2e-stream-" + "Kp4w" * 10


def _profile_env(profile: str, var: Path) -> dict[str, str]:
    env = clean_env(
        TRADINGSITE_VAR_DIR=str(var),
        DRIFT_INTERVAL_SECONDS="2",
        OPS_PASSWORD=PASSWORD,
        JWT_SECRET=JWT_SECRET,
        DATABASE_URL=f"sqlite:///{var / 'db.sqlite3'}",
    )
    if profile == "redis":
        env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/tradingsite_e2e"
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    return env


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("redis", marks=[pytest.mark.postgres, pytest.mark.redis])],
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    var = tmp_path_factory.mktemp(f"stream-{request.param}")
    env = _profile_env(request.param, var)
    if request.param == "redis":
        from tests.support import postgres_database

        postgres_database(env["DATABASE_URL"])
    for args in (
        ("migrate", "--noinput"),
        ("create_api_user", "ops", "--password-env", "OPS_PASSWORD", "--role", "analyst"),
    ):
        assert manage(*args, env=env).returncode == 0
    port = free_port()
    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "tradingsite", "worker", "-B", "--pool=solo",
         "--without-mingle", "--without-gossip", "--without-heartbeat",
         "--schedule", str(var / "beat-schedule")],
        cwd=ROOT, env=env, stdout=(var / "worker.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = start_daphne(port, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        token = requests.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token/",
            json={"username": "ops", "password": PASSWORD},
            timeout=5,
        ).json()["access"]
        yield {
            "ws": f"ws://127.0.0.1:{port}/ws/stream",
            "token": token,
            "http": f"http://127.0.0.1:{port}",
            "env": env,
        }
    finally:
        for proc in (server, worker):
            stop_process(proc)


def _handshake_status(url: str, **kwargs: object) -> int:
    async def attempt() -> int:
        try:
            async with websockets.connect(url, open_timeout=5, **kwargs):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(attempt())


def test_handshakes_without_a_valid_token_or_from_a_foreign_origin_are_refused(stack: dict) -> None:
    assert _handshake_status(stack["ws"]) == 403
    assert _handshake_status(f"{stack['ws']}?token=not-a-jwt") == 403
    assert (
        _handshake_status(f"{stack['ws']}?token={stack['token']}", origin="https://evil.example")
        == 403
    )
    assert _handshake_status(f"{stack['ws']}?token={stack['token']}") == 101


def test_an_event_published_by_the_celery_worker_arrives_live(stack: dict) -> None:
    async def listen() -> dict:
        url = f"{stack['ws']}?token={stack['token']}&topics=drift"
        async with websockets.connect(url, open_timeout=5) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), timeout=20))

    event = asyncio.run(listen())
    assert event["type"] == "drift.scan.completed"
    assert event["payload"]["detail"] == "no models in PRODUCTION"


def test_pollers_see_the_same_stream(stack: dict) -> None:
    response = requests.get(
        f"{stack['http']}/api/v1/events?topic=drift&limit=5",
        headers={"Authorization": f"Bearer {stack['token']}"},
        timeout=5,
    )
    assert response.status_code == 200
    events = response.json()["events"]
    assert events and {e["type"] for e in events} == {"drift.scan.completed"}
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


def _login(stack: dict) -> dict[str, str]:
    response = requests.post(
        f"{stack['http']}/api/v1/auth/token/",
        json={"username": "ops", "password": PASSWORD},
        timeout=5,
    )
    return response.json()


def test_expired_and_revoked_tokens_are_refused_at_the_handshake(stack: dict) -> None:
    claims = jwt.decode(stack["token"], JWT_SECRET, algorithms=["HS256"])
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, JWT_SECRET, algorithm="HS256")
    assert _handshake_status(f"{stack['ws']}?token={expired}") == 403
    revoked = _login(stack)["access"]
    assert _handshake_status(f"{stack['ws']}?token={revoked}") == 101
    response = requests.post(
        f"{stack['http']}/api/v1/auth/token/revoke/",
        headers={"Authorization": f"Bearer {revoked}"},
        timeout=5,
    )
    assert response.status_code == 200
    assert _handshake_status(f"{stack['ws']}?token={revoked}") == 403


def _publish_in_another_process(env: dict[str, str], count: int, prefix: str) -> None:
    code = (
        "from tradingsite.events import event_publish\n"
        f"for i in range({count}):\n"
        f"    event_publish(type='models.tick', subject='{prefix}' + str(i))\n"
    )
    result = manage("shell", "-c", code, env=env, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_reconnecting_client_misses_nothing_across_1000_events(stack: dict) -> None:
    url = f"{stack['ws']}?token={stack['token']}&topics=models"

    async def collect(query: str, count: int, during: object = None) -> list[dict]:
        async with websockets.connect(url + query, open_timeout=10) as ws:
            if during is not None:
                await asyncio.to_thread(during)  # type: ignore[arg-type]
            return [json.loads(await asyncio.wait_for(ws.recv(), 20)) for _ in range(count)]

    async def scenario() -> list[dict]:
        # Live: 400 events published by another process while connected; then disconnect.
        first = await collect("", 400, lambda: _publish_in_another_process(stack["env"], 400, "a"))
        # 600 more while nobody listens, then reconnect from the last id seen.
        await asyncio.to_thread(_publish_in_another_process, stack["env"], 600, "b")
        rest = await collect(f"&last_event_id={first[-1]['id']}", 600)
        return first + rest

    events = asyncio.run(scenario())
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == 1000
    assert ids == sorted(ids)
    assert [e["subject"] for e in events] == [f"a{i}" for i in range(400)] + [
        f"b{i}" for i in range(600)
    ]
