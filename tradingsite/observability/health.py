"""Health checks of the services the platform depends on, each timed and behind its breaker.

`/health` (liveness) only reads the breaker snapshot and does no I/O; `/api/v1/health` runs the
checks below. Statuses: ok, degraded (works, but not as configured or slowly), down.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from tradingsite.observability.metrics import CIRCUIT_STATE, SERVICE_LATENCY, SERVICE_UP
from tradingsite.security.breakers import STATE_CODES, CircuitOpenError, get_breaker

OK, DEGRADED, DOWN = "ok", "degraded", "down"
CHECK_TIMEOUT_SECONDS = 1.0


@dataclass
class ServiceStatus:
    name: str
    status: str
    latency_ms: float
    backend: str
    detail: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.update(data.pop("extra"))
        return data


def _timed(
    name: str, backend: str, probe: Callable[[], tuple[str, str]], breaker: str | None = None
) -> ServiceStatus:
    started = time.perf_counter()
    try:
        status, detail = get_breaker(breaker).call(probe) if breaker else probe()
    except CircuitOpenError as exc:
        status, detail = DOWN, str(exc)
    except Exception as exc:
        status, detail = DOWN, f"{type(exc).__name__}: {exc}"[:300]
    latency = time.perf_counter() - started
    SERVICE_UP.labels(service=name).set(1 if status == OK else 0)
    SERVICE_LATENCY.labels(service=name).set(latency)
    if breaker:
        CIRCUIT_STATE.labels(dependency=breaker).set(STATE_CODES[get_breaker(breaker).state])
    return ServiceStatus(name, status, round(latency * 1000, 2), backend, detail)


def check_database() -> ServiceStatus:
    def probe() -> tuple[str, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return OK, ""

    return _timed("database", connection.vendor, probe, breaker="database")


def check_cache() -> ServiceStatus:
    backend = "redis" if settings.REDIS_URL else "locmem"

    def probe() -> tuple[str, str]:
        key = f"health:{uuid.uuid4().hex}"
        cache.set(key, "1", timeout=5)
        value = cache.get(key)
        cache.delete(key)
        if value != "1":
            raise RuntimeError("value written to the cache was not read back")
        return OK, ""

    return _timed("cache", backend, probe, breaker="cache")


def check_broker() -> ServiceStatus:
    from tradingsite.celery import app

    backend = "redis" if settings.REDIS_URL else "filesystem"

    def probe() -> tuple[str, str]:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)
            if backend == "filesystem":  # the folders the embedded worker reads and writes
                for key in ("data_folder_in", "processed_folder", "control_folder"):
                    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key])
                    if not (folder.is_dir() and os.access(folder, os.W_OK)):
                        return DOWN, f"broker folder {folder} is missing or not writable"
        return OK, ""

    return _timed("broker", backend, probe, breaker="broker")


def check_channel_layer() -> ServiceStatus:
    layer = get_channel_layer()
    backend = type(layer).__name__ if layer else "none"

    async def roundtrip() -> None:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "health.ping"})
        message = await asyncio.wait_for(layer.receive(channel), CHECK_TIMEOUT_SECONDS)
        if message.get("type") != "health.ping":
            raise RuntimeError("channel layer returned a different message")

    def probe() -> tuple[str, str]:
        if layer is None:
            return DOWN, "no channel layer configured"
        async_to_sync(roundtrip)()
        return OK, ""

    return _timed("channel_layer", backend, probe)


def check_scheduler() -> ServiceStatus:
    """Beat and a worker are alive when the heartbeat task ran within three heartbeat periods."""
    from tradingsite.models import SchedulerHeartbeat

    period = settings.SCHEDULER_HEARTBEAT_SECONDS
    extra: dict[str, object] = {"drift_interval_seconds": settings.DRIFT_INTERVAL_SECONDS}

    def probe() -> tuple[str, str]:
        beat = SchedulerHeartbeat.objects.filter(name="beat").first()
        if beat is None:
            return DEGRADED, "no heartbeat yet: is `celery worker -B` (or beat + worker) running?"
        age = timezone.now() - beat.last_beat_at
        extra.update(last_heartbeat=beat.last_beat_at.isoformat(), hostname=beat.hostname)
        if age > timedelta(seconds=3 * period):
            return (
                DEGRADED,
                f"last heartbeat {int(age.total_seconds())} s ago (expected {period} s)",
            )
        return OK, ""

    status = _timed("scheduler", "celery-beat", probe)
    status.extra = extra
    return status


def service_matrix() -> list[ServiceStatus]:
    return [
        check_database(),
        check_cache(),
        check_broker(),
        check_channel_layer(),
        check_scheduler(),
    ]
