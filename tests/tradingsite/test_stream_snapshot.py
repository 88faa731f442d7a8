"""`ws /ws/stream?snapshot=1` starts with the full state, and a failing channel layer (Redis
killed or frozen) closes a socket with 1011 instead of leaving it hanging (reliability.md T5;
the real Redis outage runs in tests/chaos/test_redis_outage.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from tradingsite import consumers
from tradingsite.consumers import CLOSE_SERVER_ERROR
from tradingsite.events import event_publish
from tradingsite.observability.metrics import WEBSOCKET_CLIENTS
from tradingsite.routing import websocket_urlpatterns
from tradingsite.security.websocket import stream_edge

pytestmark = pytest.mark.django_db(transaction=True)
publish = sync_to_async(event_publish)


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(coro_fn)()


def _communicator(query: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        stream_edge(URLRouter(websocket_urlpatterns)), f"/ws/stream?{query}"
    )


@pytest.fixture
def token(user: Any) -> str:
    return str(AccessToken.for_user(user))


def _open_sockets() -> float:
    return WEBSOCKET_CLIENTS._value.get()


def test_a_snapshot_comes_first_with_the_heads_it_is_as_new_as_then_events_live(
    token: str,
) -> None:
    async def scenario() -> None:
        before = (await publish(type="models.version.promoted", subject="model:a")).id
        communicator = _communicator(f"token={token}&topics=models,drift&snapshot=1")
        assert (await communicator.connect())[0]
        snapshot = await communicator.receive_json_from(timeout=5)
        assert snapshot["type"] == "snapshot"
        assert snapshot["heads"] == {"models": before, "drift": 0}
        assert snapshot["circuit_breakers"]["cache"]["state"] == "closed"
        status = snapshot["status"]
        assert status["registry"]["production_versions"] == 0
        assert status["drift_monitor"]["models_watched"] == []
        after = (await publish(type="drift.report.created", subject="model:a")).id
        assert (await communicator.receive_json_from(timeout=5))["id"] == after
        await communicator.disconnect()

    run(scenario)


def test_a_resuming_client_gets_the_snapshot_before_the_events_it_missed(token: str) -> None:
    async def scenario() -> None:
        seen = (await publish(type="models.tick", subject="1")).id
        missed = (await publish(type="models.tick", subject="2")).id
        communicator = _communicator(f"token={token}&topics=models&snapshot=1&last_event_id={seen}")
        assert (await communicator.connect())[0]
        assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
        assert (await communicator.receive_json_from(timeout=5))["id"] == missed
        await communicator.disconnect()

    run(scenario)


def test_without_the_parameter_no_snapshot_is_sent(token: str) -> None:
    async def scenario() -> None:
        communicator = _communicator(f"token={token}&topics=models&snapshot=0")
        assert (await communicator.connect())[0]
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    run(scenario)


@pytest.mark.parametrize("failure", ["refused", "frozen"])
def test_a_channel_layer_that_cannot_join_closes_the_handshake_with_1011(
    token: str, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def group_add(group: str, channel: str) -> None:
        if failure == "refused":
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        await asyncio.sleep(3600)  # a frozen Redis answers nothing, and nothing times out

    monkeypatch.setattr(get_channel_layer(), "group_add", group_add)
    monkeypatch.setattr(consumers, "GROUP_TIMEOUT_SECONDS", 0.2)
    sockets = _open_sockets()

    async def scenario() -> None:
        communicator = _communicator(f"token={token}&topics=drift&snapshot=1")
        started = time.monotonic()
        assert (await communicator.connect(timeout=2))[0]  # accepted, so that a code is read
        closed = await communicator.receive_output(timeout=2)
        assert closed == {"type": "websocket.close", "code": CLOSE_SERVER_ERROR}
        assert time.monotonic() - started < 1.5
        await communicator.wait(timeout=1)  # the consumer ended: no receive loop left behind

    run(scenario)
    assert _open_sockets() == sockets


def test_a_channel_layer_failing_under_an_open_socket_closes_it_with_1011(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = get_channel_layer()
    sockets = _open_sockets()

    async def scenario() -> None:
        redis_gone = asyncio.Event()

        async def receive(channel: str) -> dict:
            await redis_gone.wait()
            raise ConnectionError("Connection closed by server.")

        monkeypatch.setattr(layer, "receive", receive)
        communicator = _communicator(f"token={token}&topics=drift")
        assert (await communicator.connect())[0]
        assert _open_sockets() == sockets + 1
        redis_gone.set()
        closed = await communicator.receive_output(timeout=2)
        assert closed == {"type": "websocket.close", "code": CLOSE_SERVER_ERROR}
        await communicator.wait(timeout=1)

    run(scenario)
    assert _open_sockets() == sockets  # counted out, its revalidation task cancelled
