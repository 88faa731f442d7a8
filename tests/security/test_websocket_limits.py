"""reliability.md T13 at the edge of `ws /ws/stream`, in-process (WebsocketCommunicator): refusals
happen before the socket joins any group, oversize messages close with 1009, and an open socket
is closed (4401) within STREAM_REVALIDATE_SECONDS once its credential is revoked.

tests/tradingsite/test_stream.py already shows each bad handshake is refused; this file adds
"before any group_add", the close codes and the timing. The 200-idle-sockets load is not here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from tests.conftest import PASSWORD
from tradingsite import consumers
from tradingsite.consumers import CLOSE_UNAUTHENTICATED, MAX_MESSAGE_BYTES
from tradingsite.routing import websocket_urlpatterns
from tradingsite.security.jwt import access_token_revoke
from tradingsite.security.websocket import stream_edge
from tradingsite.settings import env
from tradingsite.uvicorn_worker import UvicornWorker

pytestmark = pytest.mark.django_db(transaction=True)
OWN_ORIGIN = b"http://localhost:8000"
SHORT_INTERVAL_SECONDS = 0.2


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(coro_fn)()


def _communicator(query: str, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    application = stream_edge(URLRouter(websocket_urlpatterns))
    return WebsocketCommunicator(application, f"/ws/stream?{query}", headers=headers or [])


@pytest.fixture
def group_adds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every group_add on the channel layer the consumer uses, recorded."""
    layer = get_channel_layer()
    calls: list[tuple[str, str]] = []
    real = layer.group_add

    async def recording(group: str, channel: str) -> None:
        calls.append((group, channel))
        await real(group, channel)

    monkeypatch.setattr(layer, "group_add", recording)
    return calls


def _token(user: Any) -> AccessToken:
    return AccessToken.for_user(user)


def _expired(user: Any) -> str:
    token = _token(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def _revoked(user: Any) -> str:
    token = _token(user)
    access_token_revoke(token=token, user=user)
    return str(token)


BAD_HANDSHAKES: list[tuple[str, Callable[[Any], str], bytes | None, int]] = [
    ("no token", lambda user: "topics=drift", None, CLOSE_UNAUTHENTICATED),
    ("forged token", lambda user: "token=not.a.jwt", None, CLOSE_UNAUTHENTICATED),
    ("expired token", lambda user: f"token={_expired(user)}", None, CLOSE_UNAUTHENTICATED),
    ("revoked token", lambda user: f"token={_revoked(user)}", None, CLOSE_UNAUTHENTICATED),
    # Channels' OriginValidator denies before the app runs: daphne/uvicorn answer 403.
    ("foreign origin", lambda user: f"token={_token(user)}", b"https://evil.example", 1000),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "query", "origin", "code"), BAD_HANDSHAKES, ids=[c[0] for c in BAD_HANDSHAKES]
)
def test_a_bad_handshake_is_refused_within_a_second_before_joining_any_group(
    case: str,
    query: Callable[[Any], str],
    origin: bytes | None,
    code: int,
    user: Any,
    group_adds: list[tuple[str, str]],
) -> None:
    communicator = _communicator(query(user), [(b"origin", origin)] if origin else [])

    async def attempt() -> None:
        started = time.monotonic()
        connected, close_code = await communicator.connect(timeout=1)
        assert time.monotonic() - started < 1
        assert (connected, close_code) == (False, code)
        await communicator.disconnect()

    run(attempt)
    assert group_adds == []


def test_a_good_handshake_does_join_its_groups(user: Any, group_adds: list) -> None:
    """The control of the test above: the recorder sees the joins of an accepted socket."""

    async def attempt() -> None:
        communicator = _communicator(f"token={_token(user)}&topics=drift,models")
        assert (await communicator.connect())[0]
        await communicator.disconnect()

    run(attempt)
    assert len(group_adds) == 2


# --- oversize messages --------------------------------------------------------------------------


def _padded_ping(total_bytes: int) -> str:
    head, tail = '{"type": "ping", "pad": "', '"}'
    return head + "x" * (total_bytes - len(head) - len(tail)) + tail


@pytest.mark.parametrize(
    "frame",
    [
        {"text_data": _padded_ping(MAX_MESSAGE_BYTES + 1)},
        {"bytes_data": b"\0" * (MAX_MESSAGE_BYTES + 1)},
        # fewer characters than the bound, more bytes: the bound is in bytes
        {"text_data": "\u20ac" * (MAX_MESSAGE_BYTES // 3 + 1)},
    ],
    ids=["text", "binary", "multibyte text"],
)
def test_a_message_over_1_mib_closes_the_socket_with_1009(user: Any, frame: dict) -> None:
    async def scenario() -> None:
        communicator = _communicator(f"token={_token(user)}")
        assert (await communicator.connect())[0]
        await communicator.send_to(**frame)
        assert await communicator.receive_output(timeout=2) == {
            "type": "websocket.close",
            "code": 1009,
        }
        await communicator.disconnect()

    run(scenario)


def test_a_message_of_exactly_1_mib_is_still_answered(user: Any) -> None:
    async def scenario() -> None:
        communicator = _communicator(f"token={_token(user)}")
        assert (await communicator.connect())[0]
        message = _padded_ping(MAX_MESSAGE_BYTES)
        assert len(message.encode()) == MAX_MESSAGE_BYTES
        await communicator.send_to(text_data=message)
        assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
        await communicator.disconnect()

    run(scenario)


def test_the_production_server_bounds_websocket_messages_to_the_same_size() -> None:
    """gunicorn's uvicorn workers close larger messages with 1009 before the app sees them
    (uvicorn's default is 16 MiB; daphne's is 1 MiB already)."""
    assert UvicornWorker.CONFIG_KWARGS["ws_max_size"] == MAX_MESSAGE_BYTES


# --- revalidation while connected ---------------------------------------------------------------


def test_the_documented_revalidation_interval_is_at_most_60_seconds() -> None:
    default = env.float("STREAM_REVALIDATE_SECONDS", default=30.0)
    assert 0 < settings.STREAM_REVALIDATE_SECONDS <= 60
    assert "STREAM_REVALIDATE_SECONDS=30" in (settings.BASE_DIR / ".env.example").read_text()
    assert default <= 60


def _closed_within(communicator: Any, seconds: float) -> Callable[[], Awaitable[None]]:
    async def wait() -> None:
        started = time.monotonic()
        message = await communicator.receive_output(timeout=seconds)
        assert message == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
        assert time.monotonic() - started < seconds

    return wait


def test_revoking_the_token_closes_the_open_socket_within_the_interval(
    user: Any, settings: Any
) -> None:
    settings.STREAM_REVALIDATE_SECONDS = SHORT_INTERVAL_SECONDS
    token = _token(user)

    async def scenario() -> None:
        communicator = _communicator(f"token={token}")
        assert (await communicator.connect())[0]
        # still valid over several checks: the socket stays open and answers
        assert await communicator.receive_nothing(timeout=3 * SHORT_INTERVAL_SECONDS)
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=2) == {"type": "pong"}
        await sync_to_async(access_token_revoke)(token=token, user=user)
        await _closed_within(communicator, 3 * SHORT_INTERVAL_SECONDS + 1)()
        await communicator.disconnect()

    run(scenario)


def test_deactivating_the_user_closes_the_open_socket(user: Any, settings: Any) -> None:
    settings.STREAM_REVALIDATE_SECONDS = SHORT_INTERVAL_SECONDS

    async def scenario() -> None:
        communicator = _communicator(f"token={_token(user)}")
        assert (await communicator.connect())[0]
        await sync_to_async(
            get_user_model().objects.filter(pk=user.pk).update
        )(is_active=False)  # fmt: skip
        await _closed_within(communicator, 3 * SHORT_INTERVAL_SECONDS + 1)()
        await communicator.disconnect()

    run(scenario)


def test_logging_out_closes_the_socket_of_that_session(user: Any, settings: Any) -> None:
    settings.STREAM_REVALIDATE_SECONDS = SHORT_INTERVAL_SECONDS
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    async def scenario() -> None:
        communicator = _communicator(
            "topics=drift", [(b"origin", OWN_ORIGIN), (b"cookie", cookie.encode())]
        )
        assert (await communicator.connect())[0]
        assert await communicator.receive_nothing(timeout=3 * SHORT_INTERVAL_SECONDS)
        await sync_to_async(client.logout)()
        await _closed_within(communicator, 3 * SHORT_INTERVAL_SECONDS + 1)()
        await communicator.disconnect()

    run(scenario)


def test_a_revalidation_that_cannot_reach_the_store_closes_the_socket(
    user: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: an unverifiable credential does not keep the socket open."""
    settings.STREAM_REVALIDATE_SECONDS = SHORT_INTERVAL_SECONDS

    def unreachable(scope: dict) -> bool:
        raise ConnectionError("database down")

    async def scenario() -> None:
        communicator = _communicator(f"token={_token(user)}")
        assert (await communicator.connect())[0]
        monkeypatch.setattr(consumers, "scope_still_authorized", unreachable)
        message = await communicator.receive_output(timeout=3 * SHORT_INTERVAL_SECONDS + 1)
        assert message == {"type": "websocket.close", "code": 1011}
        await communicator.disconnect()

    run(scenario)
