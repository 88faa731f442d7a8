"""What real Celery processes showed about the drift tasks (reliability.md T7/T8, run by
tests/chaos/test_celery_faults.py), pinned down in process:

- a scheduled scan retried after a database error claims the interval it was sent in, not the
  one its retry runs in (that interval went unscanned);
- a version task redelivered after its worker was killed mid-scan breaks the dead attempt's lease
  instead of waiting it out (DRIFT_SCAN_LOCK_SECONDS: 60 s in production, longer than the 30 s
  the table allows for the retry);
- the broker finds a killed worker's unacked task soon after its visibility_timeout (kombu's
  default sweep runs every 100 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.cache import cache
from django.db import OperationalError

import drift.services
from drift.models import DriftReport, DriftScan
from drift.services.locks import scan_lock_key
from drift.services.windows import current_window
from drift.tasks import _attempt_key, drift_scan_all_task, drift_scan_version_task
from registry.models import ModelVersion
from tests.tradingsite.production_settings import production_settings

MakeVersion = Callable[..., ModelVersion]
INTERVAL = 600


class Retrying(Exception):
    pass


@pytest.fixture
def retries(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Task.retry calls, recorded instead of sent."""
    calls: list[dict[str, Any]] = []

    def retry(self: Any = None, **kwargs: Any) -> Exception:
        calls.append(kwargs)
        return Retrying()

    for task in (drift_scan_all_task, drift_scan_version_task):
        monkeypatch.setattr(task, "retry", retry)
    return calls


def run_queued(task: Any, *args: Any, request_id: str = "t1", retries: int = 0, **kwargs: Any):  # noqa: ANN201
    """The task's body as a worker runs a delivered message (not eagerly)."""
    task.push_request(id=request_id, retries=retries, is_eager=False, hostname="w1@host")
    try:
        return task.run(*args, **kwargs)
    finally:
        task.pop_request()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[list[float]]:
    """The scans' clock, in seconds; the interval is INTERVAL."""
    settings.DRIFT_INTERVAL_SECONDS = INTERVAL
    now = [1_000 * INTERVAL + 0.5 * INTERVAL]
    monkeypatch.setattr(
        "drift.services.scans.timezone.now", lambda: datetime.fromtimestamp(now[0], tz=UTC)
    )
    yield now


@pytest.mark.django_db
def test_a_scan_retried_after_a_database_error_claims_its_own_interval(
    make_version: MakeVersion,
    clock: list[float],
    retries: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_version()
    sent_in = int(clock[0] // INTERVAL)
    schedule = drift.services.drift_scan_schedule

    def down(**kwargs: Any) -> None:
        raise OperationalError("connection timeout expired")

    monkeypatch.setattr(drift.services, "drift_scan_schedule", down)
    with pytest.raises(Retrying):
        run_queued(drift_scan_all_task)
    assert retries[0]["kwargs"] == {"trigger": "schedule", "slot": sent_in}
    assert isinstance(retries[0]["exc"], OperationalError)

    monkeypatch.setattr(drift.services, "drift_scan_schedule", schedule)
    clock[0] += INTERVAL  # the retry runs in the next interval
    first = run_queued(drift_scan_all_task, retries=1, **retries[0]["kwargs"])
    second = run_queued(drift_scan_all_task, request_id="t2")  # the next interval's own send
    slots = sorted(DriftScan.objects.values_list("slot", flat=True))
    assert first is not None and second is not None and slots == [sent_in, sent_in + 1]


@pytest.mark.django_db
def test_a_redelivered_version_task_breaks_the_lease_of_its_dead_attempt(
    make_version: MakeVersion, retries: list[dict[str, Any]]
) -> None:
    version = make_version()
    scan = DriftScan.objects.create(
        started_at=version.created_at, version_ids=[version.pk], models_watched=1
    )
    lease = scan_lock_key(version.pk, current_window(version).start)
    # The first delivery of t1 marked its attempt and leased the window, then was killed.
    cache.set(_attempt_key(scan.pk, version.pk), "t1:0")
    cache.set(lease, "dead worker's token", 60)

    # Another task (or this one's own retry) finds the lease held: it waits it out.
    with pytest.raises(Retrying):
        run_queued(drift_scan_version_task, scan.pk, version.pk, request_id="t2")
    assert cache.get(lease) is not None and not DriftReport.objects.exists()
    cache.set(_attempt_key(scan.pk, version.pk), "t1:0")  # t2 cleared its own marker

    # The redelivered t1 (same id, same retry count) knows the holder is dead.
    assert run_queued(drift_scan_version_task, scan.pk, version.pk) == "created"
    assert DriftReport.objects.get().features.count() == 3
    assert cache.get(_attempt_key(scan.pk, version.pk)) is None  # cleared once done
    assert len(retries) == 1


def test_a_killed_workers_task_is_swept_back_soon_after_its_visibility_timeout() -> None:
    from kombu.transport.redis import Channel

    options = production_settings()["CELERY_BROKER_TRANSPORT_OPTIONS"]
    assert {"unacked_restore_interval", "unacked_restore_throttle"} <= set(
        Channel.from_transport_options
    )
    interval = options.get("unacked_restore_interval", Channel.unacked_restore_interval)
    throttle = options.get("unacked_restore_throttle", Channel.unacked_restore_throttle)
    assert interval * throttle <= 10
    assert options["visibility_timeout"] > 1800 + 30  # > the scan's time limit: no double run
