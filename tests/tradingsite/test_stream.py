"""`ws /ws/stream` through Channels' WebsocketCommunicator (in-memory layer, or the real Redis in
make test's REDIS_URL pass), and the outbox it reads."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import transaction
from rest_framework_simplejwt.tokens import AccessToken

from tradingsite import consumers
from tradingsite.events import HEADS_GROUP, EventError, event_publish, topic_heads
from tradingsite.models import Event, RevokedToken
from tradingsite.routing import websocket_urlpatterns
from tradingsite.security.websocket import stream_edge

pytestmark = pytest.mark.django_db(transaction=True)
publish = sync_to_async(event_publish)


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(coro_fn)()


def _communicator(query: str, origin: bytes | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", origin)] if origin else []
    # The websocket half of tradingsite.asgi.application (importing that module logs the banner).
    application = stream_edge(URLRouter(websocket_urlpatterns))
    return WebsocketCommunicator(application, f"/ws/stream?{query}", headers=headers)


@pytest.fixture
def token(user: Any) -> str:
    return str(AccessToken.for_user(user))


def _refused(query: str, origin: bytes | None = None) -> None:
    async def attempt() -> None:
        communicator = _communicator(query, origin)
        connected, _ = await communicator.connect()
        assert not connected
        await communicator.disconnect()

    run(attempt)


def test_a_connection_without_token_is_refused() -> None:
    _refused("topics=drift")


def test_an_expired_token_is_refused(user: Any) -> None:
    expired = AccessToken.for_user(user)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    _refused(f"token={expired}")


def test_a_revoked_token_is_refused(user: Any) -> None:
    access = AccessToken.for_user(user)
    RevokedToken.objects.create(jti=access["jti"], expires_at=access.current_time + timedelta(1))
    _refused(f"token={access}")


def test_a_foreign_origin_is_refused(token: str) -> None:
    _refused(f"token={token}", origin=b"https://evil.example")


def test_unknown_topics_are_refused(token: str) -> None:
    _refused(f"token={token}&topics=drift,weather")


def test_the_own_origin_is_accepted(token: str) -> None:
    async def attempt() -> None:
        communicator = _communicator(f"token={token}", origin=b"http://localhost:8000")
        connected, _ = await communicator.connect()
        assert connected
        await communicator.disconnect()

    run(attempt)


def test_clients_get_only_their_topics_and_subject(token: str) -> None:
    async def scenario() -> None:
        communicator = _communicator(f"token={token}&topics=drift,models&subject=model:a")
        assert (await communicator.connect())[0]
        await publish(type="features.view.materialized", subject="model:a")
        await publish(type="models.version.promoted", subject="model:b")
        await publish(type="drift.report.created", subject="model:a", payload={"severity": "HIGH"})
        received = await communicator.receive_json_from(timeout=3)
        assert (received["type"], received["payload"]) == (
            "drift.report.created",
            {"severity": "HIGH"},
        )
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    run(scenario)


def test_replay_then_live_has_no_gap_and_no_duplicate_across_1000_events(token: str) -> None:
    async def scenario() -> None:
        ids = [(await publish(type="models.tick", subject=str(i))).id for i in range(600)]
        first = _communicator(f"token={token}&topics=models&last_event_id={ids[99]}")
        assert (await first.connect())[0]
        got = [(await first.receive_json_from(timeout=5))["id"] for _ in range(300)]
        await first.disconnect()  # drops the connection after 400 of 600
        for i in range(400):
            ids.append((await publish(type="models.tick", subject=str(600 + i))).id)
        again = _communicator(f"token={token}&topics=models&last_event_id={got[-1]}")
        assert (await again.connect())[0]
        for i in range(100):  # live while the replay is running or just done
            ids.append((await publish(type="models.tick", subject=f"live{i}")).id)
        while len(got) < len(ids) - 100:
            got.append((await again.receive_json_from(timeout=5))["id"])
        assert await again.receive_nothing(timeout=0.5)
        await again.disconnect()
        assert got == ids[100:]

    run(scenario)


def test_an_event_whose_broadcast_was_lost_is_read_from_the_outbox(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "ensure_relay_running", lambda: None)  # no embedded relay

    async def scenario() -> None:
        communicator = _communicator(f"token={token}&topics=drift")
        assert (await communicator.connect())[0]
        with monkeypatch.context() as lost:
            lost.setattr("tradingsite.events.event_broadcast", lambda event: None)
            missed = await publish(type="drift.alert.raised", subject="m")
        live = await publish(type="drift.alert.cleared", subject="m")
        assert [(await communicator.receive_json_from(timeout=3))["id"] for _ in range(2)] == [
            missed.id,
            live.id,
        ]
        await communicator.disconnect()

    run(scenario)


def test_a_dropped_last_event_is_fetched_when_the_relay_reports_the_topic_head(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "ensure_relay_running", lambda: None)

    async def scenario() -> None:
        communicator = _communicator(f"token={token}&topics=drift")
        assert (await communicator.connect())[0]
        with monkeypatch.context() as lost:
            lost.setattr("tradingsite.events.event_broadcast", lambda event: None)
            dropped = await publish(type="drift.alert.raised", subject="m")
        assert await communicator.receive_nothing(timeout=0.3)  # no later event will reveal it
        heads = await sync_to_async(topic_heads)(["drift", "models", "features"])
        await get_channel_layer().group_send(HEADS_GROUP, {"type": "event.heads", "heads": heads})
        assert (await communicator.receive_json_from(timeout=3))["id"] == dropped.id
        await communicator.disconnect()

    run(scenario)


def test_a_rolled_back_transaction_publishes_nothing(token: str) -> None:
    def publish_then_fail() -> None:
        with pytest.raises(RuntimeError), transaction.atomic():
            event_publish(type="models.version.promoted", subject="model:x")
            raise RuntimeError("promotion failed")

    async def scenario() -> None:
        communicator = _communicator(f"token={token}")
        assert (await communicator.connect())[0]
        await sync_to_async(publish_then_fail)()
        assert await communicator.receive_nothing(timeout=0.6)
        await communicator.disconnect()

    run(scenario)
    assert not Event.objects.exists()


def test_event_types_must_name_a_known_topic() -> None:
    with pytest.raises(EventError, match="topic"):
        event_publish(type="weather.sunny")


def test_one_process_a_tick_sends_the_heads_when_the_layer_crosses_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tradingsite import events

    monkeypatch.setattr(events, "forwarding_needed", lambda: False)  # as with channels-redis
    monkeypatch.setattr(events.time, "time", lambda: 1_000_000.0)
    assert [events._heads_turn_is_mine() for _ in range(3)] == [True, False, False]
    monkeypatch.setattr(events.time, "time", lambda: 1_000_000.0 + events.HEADS_INTERVAL_SECONDS)
    assert events._heads_turn_is_mine()  # the next tick
    monkeypatch.setattr(events, "forwarding_needed", lambda: True)  # in-process layer
    assert events._heads_turn_is_mine() and events._heads_turn_is_mine()


def test_a_failing_relay_logs_the_outage_once_then_its_recovery(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis outage must not flood the log: the relay ticks 4 times a second (events.py)."""
    import asyncio
    import logging

    from tradingsite import events

    calls = {"n": 0}

    def heads(topics: list[str]) -> dict[str, int]:
        calls["n"] += 1
        if calls["n"] <= 20:
            raise ConnectionError("redis down")
        return {}

    monkeypatch.setattr(events, "topic_heads", heads)
    monkeypatch.setattr(events, "latest_event_id", lambda **_: 0)
    monkeypatch.setattr(events, "forwarding_needed", lambda: False)
    monkeypatch.setattr(events, "_heads_turn_is_mine", lambda: True)
    monkeypatch.setattr(events, "HEADS_INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(events, "RELAY_POLL_SECONDS", 0.005)

    async def run() -> None:
        task = asyncio.create_task(events._relay_forever())
        while calls["n"] <= 22:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, logger="tradingsite.events"):
        asyncio.run(run())
    messages = [r.getMessage() for r in caplog.records if r.name == "tradingsite.events"]
    assert messages[0] == "outbox relay failed; retrying"  # with its traceback, once
    assert sum("failed" in m or "still failing" in m for m in messages) == 1  # not 20
    assert any(m.startswith("outbox relay recovered after") for m in messages)
