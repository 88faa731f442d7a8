"""`ws /ws/stream`: authenticated, topic-filtered, resumable event stream (a thin relay).

`snapshot=1` asks for the full state first (`{"type": "snapshot", ...}`: health, the ML
status with the Production models and the drift monitor, and the topic heads it is as new as),
so a client that reconnects after an outage redraws from it instead of guessing what it missed.
When the channel layer (Redis) fails, a socket is closed with 1011, never left hanging: the
client reconnects, with `last_event_id` and `snapshot=1`, once it is back (reliability.md T5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from tradingsite.events import (
    HEADS_GROUP,
    EventError,
    ensure_relay_running,
    events_after,
    topic_group,
    topic_heads,
    topics_parse,
)
from tradingsite.observability.metrics import EVENTS_DELIVERED, WEBSOCKET_CLIENTS
from tradingsite.security.breakers import breakers_snapshot
from tradingsite.security.websocket import scope_still_authorized
from tradingsite.selectors import ml_status

CLOSE_UNAUTHENTICATED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_MESSAGE_TOO_BIG = 1009  # RFC 6455
CLOSE_SERVER_ERROR = 1011  # RFC 6455
REPLAY_BATCH = 500
# Largest message a client may send (it only ever sends pings). daphne's default is the same;
# the production server (tradingsite/uvicorn_worker.py) sets uvicorn's ws_max_size to match.
MAX_MESSAGE_BYTES = 1024 * 1024
# Longest a join or leave of the topic groups may take: channels_redis has no socket timeout of
# its own, so against a frozen Redis a handshake would otherwise hang until Redis came back.
GROUP_TIMEOUT_SECONDS = 2.0


logger = logging.getLogger(__name__)


class StreamRequestError(ValueError):
    pass


def parse_stream_query(query_string: bytes) -> tuple[list[str], str, int | None]:
    """`topics=drift,models&subject=model:x&last_event_id=42` -> (topics, subject, last id)."""
    query = {k: v[-1] for k, v in parse_qs(query_string.decode("latin1")).items()}
    try:
        topics = topics_parse(query.get("topics", ""))
    except EventError as exc:
        raise StreamRequestError(str(exc)) from exc
    last = query.get("last_event_id")
    if last is not None and not (last.isdigit() and len(last) < 19):
        raise StreamRequestError("last_event_id must be a non-negative integer")
    return topics, query.get("subject", ""), None if last is None else int(last)


def wants_snapshot(query_string: bytes) -> bool:
    values = parse_qs(query_string.decode("latin1")).get("snapshot", [""])
    return values[-1].lower() in ("1", "true", "yes")


def stream_snapshot(*, heads: dict[str, int]) -> dict[str, Any]:
    """The state a (re)connecting client redraws from, at least as new as `heads` (the topic
    heads it is up to date with): events after them follow live."""
    return {
        "type": "snapshot",
        "heads": heads,
        "circuit_breakers": breakers_snapshot(),
        "status": ml_status(),  # registry (Production models), drift monitor, features, ...
    }


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    """Replays missed events from the outbox, then relays live ones: no gap, no duplicate."""

    topics: list[str]
    subject: str
    seen: dict[str, int]  # per topic: the newest event id this client is up to date with

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)  # before accept: handshake refused
            return
        try:
            self.topics, self.subject, last_event_id = parse_stream_query(
                self.scope["query_string"]
            )
        except StreamRequestError:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        ensure_relay_running()
        try:  # join first: whatever commits from now on is queued for us
            await self._groups(self.channel_layer.group_add)
        except Exception as exc:
            logger.warning("websocket cannot join its topic groups: %r", exc)
            await self.accept()  # so that the client reads a close code, not a refused handshake
            await self.close(code=CLOSE_SERVER_ERROR)
            self.join_failed = True
            raise StopConsumer from exc  # no receive loop on a channel layer that is not there
        # Then note where each topic stands. Both happen before the handshake completes, so
        # every event committed after it reaches this client live (or by gap fill).
        self.seen = await database_sync_to_async(topic_heads)(self.topics)
        await self.accept()
        WEBSOCKET_CLIENTS.inc()
        self.counted = True
        self.revalidation = asyncio.ensure_future(self._revalidate_periodically())
        if wants_snapshot(self.scope["query_string"]):
            snapshot = await database_sync_to_async(stream_snapshot)(heads=dict(self.seen))
            await self.send_json(snapshot)
        if last_event_id is not None:
            await self._replay(after=last_event_id, heads=dict(self.seen))

    async def disconnect(self, code: int) -> None:
        revalidation = getattr(self, "revalidation", None)
        if revalidation is not None and revalidation is not asyncio.current_task():
            revalidation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await revalidation
        if getattr(self, "counted", False):
            self.counted = False
            WEBSOCKET_CLIENTS.dec()
        if getattr(self, "topics", None):
            # Redis down: the group entries expire on their own (channels_redis group_expiry).
            with contextlib.suppress(Exception):
                await self._groups(self.channel_layer.group_discard)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A channel layer that fails under an open socket (Redis killed) ends the consumer's
        receive loop with its error: close the socket with 1011 and clean up, so the client
        reconnects at once and the open-socket gauge stays right."""
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            if getattr(self, "join_failed", False):
                return  # closed in connect(); the layer's pending receive failed the same way
            if not getattr(self, "counted", False):
                raise  # not an open socket of ours: the server handles it as before
            logger.warning("websocket closed: the event stream failed (%r)", exc)
            with contextlib.suppress(Exception):  # the client may be gone already
                await self.close(code=CLOSE_SERVER_ERROR)
            await self.disconnect(CLOSE_SERVER_ERROR)

    async def _groups(self, action: Any) -> None:
        """Join or leave every topic group and the heads group (`action`: the layer's group_add
        or group_discard)."""
        async with asyncio.timeout(GROUP_TIMEOUT_SECONDS):
            for group in [*(topic_group(topic) for topic in self.topics), HEADS_GROUP]:
                await action(group, self.channel_name)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Refuses an oversize message before parsing it (the server bounds it too)."""
        text, data = message.get("text"), message.get("bytes")
        size = len(data) if data is not None else len(text or "")
        if text is not None and size <= MAX_MESSAGE_BYTES:
            size = len(text.encode())  # characters are up to 4 bytes each
        if size > MAX_MESSAGE_BYTES:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        await super().websocket_receive(message)

    async def _revalidate_periodically(self) -> None:
        """Closes the socket (4401) once its token is revoked or expired, its session ended or
        its user deactivated: checked every STREAM_REVALIDATE_SECONDS while connected."""
        while True:
            await asyncio.sleep(settings.STREAM_REVALIDATE_SECONDS)
            try:
                authorized = await database_sync_to_async(scope_still_authorized)(self.scope)
            except Exception:
                # Never fail open: a credential that cannot be checked ends the socket; the
                # client reconnects (resuming from its last event id) once the store is back.
                logger.exception("websocket credential revalidation failed")
                await self.close(code=CLOSE_SERVER_ERROR)
                return
            if not authorized:
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def event_message(self, message: dict[str, Any]) -> None:
        event = message["event"]
        topic = event["topic"]
        if event["id"] <= self.seen.get(topic, event["id"]):
            return  # already sent (replay, or both the relay and the broadcast delivered it)
        if (event["previous_in_topic"] or 0) > self.seen[topic]:
            # An earlier event of this topic never reached us live: read it from the outbox.
            await self._catch_up(topic, until=event["id"] - 1)
        await self._send_event(event)
        self.seen[topic] = event["id"]

    async def event_heads(self, message: dict[str, Any]) -> None:
        """The relay's periodic word on where each topic stands: fetch whatever we lack."""
        for topic in self.topics:
            if message["heads"].get(topic, 0) > self.seen[topic]:
                await self._catch_up(topic, until=message["heads"][topic])

    async def _catch_up(self, topic: str, *, until: int) -> None:
        missed = await database_sync_to_async(events_after)(
            after=self.seen[topic], topics=[topic], subject=self.subject, until=until
        )
        for row in missed:
            await self._send_event(row.to_message())
        self.seen[topic] = max(self.seen[topic], until)

    async def _replay(self, *, after: int, heads: dict[str, int]) -> None:
        cursor = after
        while True:
            batch = await database_sync_to_async(events_after)(
                after=cursor, topics=self.topics, subject=self.subject, until=max(heads.values()),
                limit=REPLAY_BATCH,
            )  # fmt: skip
            for row in batch:
                if row.id <= heads[row.topic]:
                    await self._send_event(row.to_message())
            if len(batch) < REPLAY_BATCH:
                return
            cursor = batch[-1].id

    async def _send_event(self, event: dict[str, Any]) -> None:
        if self.subject and event["subject"] != self.subject:
            return
        await self.send_json(event)
        EVENTS_DELIVERED.labels(topic=event["topic"]).inc()
