"""The event outbox: publish in the caller's transaction, broadcast after commit.

The outbox table is the record; the channel layer is the fast path. With Redis every process's
broadcast reaches every server; in the embedded profile a relay in the server process tails the
table, so events written by the Celery worker process still reach websocket clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from tradingsite.models import Event, Topic
from tradingsite.observability.metrics import EVENTS_PUBLISHED
from tradingsite.security.breakers import get_breaker

logger = logging.getLogger(__name__)
# Any constant: the advisory lock that makes outbox ids grow in commit order on PostgreSQL.
OUTBOX_LOCK_KEY = 7_320_114
RELAY_POLL_SECONDS = 0.25
RELAY_BATCH = 500
HEADS_INTERVAL_SECONDS = 2.0
RELAY_LOG_EVERY_S = 30.0  # while the relay keeps failing, one warning per this many seconds


class EventError(ValueError):
    """The event cannot be published as given; the message says why."""


def topic_group(topic: str) -> str:
    return f"events.{topic}"


# Every stream consumer joins this group too: the relay's periodic topic heads go to it as one
# message carrying every topic (one per tick per socket, not one per topic per server process).
HEADS_GROUP = "events.heads"


def topic_of(event_type: str) -> str:
    topic = event_type.split(".", 1)[0]
    if topic not in Topic.values or "." not in event_type:
        raise EventError(
            f"event type {event_type!r} must be '<topic>.<name>' with a topic in {Topic.values}"
        )
    return topic


def topics_parse(value: str) -> list[str]:
    """`"drift,models"` -> ["drift", "models"]; empty -> every topic; unknown -> EventError."""
    topics = [t for t in value.split(",") if t] or list(Topic.values)
    unknown = sorted(set(topics) - set(Topic.values))
    if unknown:
        raise EventError(f"unknown topics {unknown}; choose from {list(Topic.values)}")
    return topics


def event_publish(*, type: str, subject: str = "", payload: dict[str, Any] | None = None) -> Event:  # noqa: A002
    """Write an event in the current transaction; it is broadcast only if that commits."""
    topic = topic_of(type)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Held to the end of the outermost transaction: publishers commit in id order, so
            # a reader that has seen id N has seen every event below N (no gap after commit).
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [OUTBOX_LOCK_KEY])
        previous = Event.objects.filter(topic=topic).aggregate(last=Max("id"))["last"]
        event = Event.objects.create(
            topic=topic,
            type=type,
            subject=subject,
            payload=payload or {},
            previous_in_topic=previous,
        )
    EVENTS_PUBLISHED.labels(topic=topic).inc()
    transaction.on_commit(lambda: event_broadcast(event))
    return event


def event_broadcast(event: Event) -> None:
    """Push a committed event to the channel layer; a failure only delays it (the relay or a
    reconnecting client's replay reads it from the outbox)."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "event.message", "event": event.to_message()}

    async def send() -> None:
        # channels_redis has no socket timeout of its own: a frozen Redis would hold this
        # request (and, under ASGI, every sync request of the worker) forever (reliability.md T5).
        timeout = settings.REDIS_SOCKET_TIMEOUT_SECONDS
        await asyncio.wait_for(layer.group_send(topic_group(event.topic), message), timeout)

    try:
        # Same Redis as the cache: behind its breaker, so an outage costs one timeout, not one
        # per event.
        get_breaker("cache").call(async_to_sync(send))
    except Exception as exc:  # Redis down, slow or its breaker open: the outbox still has it
        logger.warning("event %s not broadcast: %s", event.pk, exc)


def events_after(
    *, after: int, topics: list[str], subject: str = "", until: int | None = None, limit: int = 500
) -> list[Event]:
    queryset = Event.objects.filter(id__gt=after, topic__in=topics)
    if until is not None:
        queryset = queryset.filter(id__lte=until)
    if subject:
        queryset = queryset.filter(subject=subject)
    return list(queryset.order_by("id")[:limit])


def latest_event_id(*, topic: str | None = None) -> int:
    queryset = Event.objects.all() if topic is None else Event.objects.filter(topic=topic)
    return queryset.aggregate(last=Max("id"))["last"] or 0


@transaction.atomic
def events_prune(*, older_than_days: int | None = None) -> int:
    """Delete events older than the retention; the newest event of each topic always stays."""
    days = settings.EVENT_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    keep = [latest_event_id(topic=t) for t in Topic.values]
    deleted, _ = Event.objects.filter(created_at__lt=cutoff).exclude(id__in=keep).delete()
    return deleted


# --- the relay: outbox -> channel layer, in every server process --------------------------------
# Embedded (in-process layer): it forwards every committed event, since a Celery worker's
# broadcast cannot reach this process. Both profiles: every HEADS_INTERVAL_SECONDS it tells the
# clients where each topic stands, so a client whose last live events were dropped (a full
# channel, a Redis failover) reads them from the outbox instead of waiting for the next event.

_relay: dict[str, Any] = {"loop": None, "task": None}


def forwarding_needed() -> bool:
    """Only an in-process channel layer needs events forwarded; channels-redis crosses processes."""
    return not settings.REDIS_URL


def ensure_relay_running() -> None:
    """Start the relay in this process's event loop once (called by the first consumer)."""
    loop = asyncio.get_running_loop()
    if _relay["loop"] is not loop or _relay["task"].done():
        _relay.update(loop=loop, task=loop.create_task(_relay_forever()))


async def _relay_forever() -> None:
    layer = get_channel_layer()
    cursor = await database_sync_to_async(latest_event_id)()
    next_heads = 0.0
    me = asyncio.current_task()
    failing_since: float | None = None  # an outage is logged once, then every RELAY_LOG_EVERY_S
    last_logged = 0.0
    while me is None or not me.cancelling():  # a cancel swallowed by a thread hop still ends us
        try:
            if forwarding_needed():
                cursor = await _forward_new_events(layer, cursor)
            if time.monotonic() >= next_heads:
                next_heads = time.monotonic() + HEADS_INTERVAL_SECONDS
                if await sync_to_async(_heads_turn_is_mine)():
                    heads = await database_sync_to_async(topic_heads)(list(Topic.values))
                    await layer.group_send(HEADS_GROUP, {"type": "event.heads", "heads": heads})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let the relay die: log and retry on the next tick
            if me is not None and me.cancelling():
                return
            now = time.monotonic()
            if failing_since is None:
                failing_since = last_logged = now
                logger.exception("outbox relay failed; retrying")
            elif now - last_logged >= RELAY_LOG_EVERY_S:  # a Redis outage: no log flood
                last_logged = now
                logger.warning(
                    "outbox relay still failing after %.0f s: %s", now - failing_since, exc
                )
        else:
            if failing_since is not None:
                logger.info("outbox relay recovered after %.0f s", time.monotonic() - failing_since)
                failing_since = None
        await asyncio.sleep(RELAY_POLL_SECONDS)


def _heads_turn_is_mine() -> bool:
    """Whether this process sends this tick's heads. The in-process layer reaches only this
    process's sockets, so each sends its own. channels-redis reaches every process's sockets, so
    one process a tick sends (the first to claim the tick in the shared cache); were the cache
    unusable, each sends, as before."""
    if forwarding_needed():
        return True
    key = f"events:heads-tick:{int(time.time() // HEADS_INTERVAL_SECONDS)}"
    try:
        return bool(get_breaker("cache").call(lambda: cache.add(key, 1, timeout=10)))
    except Exception:  # Redis down or its breaker open: the layer is probably down too
        return True


async def _forward_new_events(layer: Any, cursor: int) -> int:
    batch = await database_sync_to_async(_relay_batch)(cursor)
    for message in batch:
        await layer.group_send(
            topic_group(message["topic"]), {"type": "event.message", "event": message}
        )
        cursor = message["id"]
    return cursor


def _relay_batch(cursor: int) -> list[dict[str, object]]:
    rows = Event.objects.filter(id__gt=cursor).order_by("id")[:RELAY_BATCH]
    return [event.to_message() for event in rows]


def topic_heads(topics: list[str]) -> dict[str, int]:
    """The newest event id of each topic (0 for a topic with no event yet)."""
    rows = Event.objects.filter(topic__in=topics).values("topic").annotate(last=Max("id"))
    heads = dict.fromkeys(topics, 0)
    heads.update({row["topic"]: row["last"] for row in rows})
    return heads
