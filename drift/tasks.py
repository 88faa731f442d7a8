"""Drift scans in Celery: the beat task claims the interval and sends one task per model version
(a group), so more workers finish a scan sooner; each version task records its item and the last
one finishes the scan (no result backend needed). Webhook deliveries retry with backoff.

With acks_late + reject_on_worker_lost (settings), a worker killed mid-scan gets its task
redelivered: the killed attempt left nothing (one transaction), the retry scans the window again.
The killed attempt's lease on the window would make that retry wait until the lease lapses; a
redelivered attempt that finds its own earlier attempt's marker breaks the lease instead
(reliability.md T7: the retry succeeds within 30 s of a pool child's death).
"""

from __future__ import annotations

import logging
import math
import random
from typing import TYPE_CHECKING

from celery import group, shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError

if TYPE_CHECKING:
    from drift.models import DriftScan
    from registry.models import ModelVersion

logger = logging.getLogger(__name__)
SCAN_TIME_LIMIT_SECONDS = settings.DRIFT_SCAN_TIMEOUT_SECONDS
LOCKED_RETRY_SECONDS = 15
DB_RETRIES = 3


@shared_task(bind=True, max_retries=DB_RETRIES)
def drift_scan_all_task(
    self,  # noqa: ANN001
    trigger: str = "schedule",
    slot: int | None = None,
) -> int | None:
    """Beat's scan of every Production version (and a worker start's): None when another
    scheduler already ran this interval's. Also re-sends webhook deliveries whose task was lost.

    The interval slot is taken when the task first runs and kept by its retries: a retry after a
    database error that lands in the next interval still claims the one it was sent in (it used
    to claim the next one, leaving its own unscanned: reliability.md T8)."""
    from drift.services import drift_scan_schedule
    from drift.services.scans import drift_scan_slot
    from drift.webhooks import drift_webhooks_stale

    if slot is None:
        slot = drift_scan_slot()
    try:
        for delivery_id in drift_webhooks_stale():
            drift_webhook_deliver_task.delay(delivery_id)
        scan = drift_scan_schedule(trigger=trigger, slot=slot)
    except OperationalError as exc:
        countdown = random.uniform(0, 2**self.request.retries)  # noqa: S311 - jitter, not crypto
        raise self.retry(
            exc=exc, kwargs={"trigger": trigger, "slot": slot}, countdown=countdown
        ) from exc
    if scan is None:
        return None
    drift_scan_fan_out(scan)
    return scan.pk


def drift_scan_fan_out(scan: DriftScan) -> None:
    """One task per version of the scan."""
    if scan.version_ids:
        group(drift_scan_version_task.si(scan.pk, pk) for pk in scan.version_ids).apply_async()


@shared_task(
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=SCAN_TIME_LIMIT_SECONDS,
    time_limit=SCAN_TIME_LIMIT_SECONDS + 30,
)
def drift_scan_version_task(self, scan_id: int, version_id: int) -> str:  # noqa: ANN001
    """One version of a scan; returns its outcome. A window whose lease another worker holds
    is tried again every LOCKED_RETRY_SECONDS until the lease must have lapsed (its holder may
    be a killed worker: this may be that worker's own redelivered task)."""
    from drift.models import DriftScan
    from drift.services import WindowLocked, drift_scan_record
    from registry.models import ModelVersion

    scan = DriftScan.objects.get(pk=scan_id)
    version = ModelVersion.objects.select_related("model", "feature_view").get(pk=version_id)
    lease = settings.DRIFT_SCAN_LOCK_SECONDS
    every = min(LOCKED_RETRY_SECONDS, lease)  # a short lease lapses before 15 s
    waits = math.ceil(lease / every) + 1
    wait = not self.request.is_eager and self.request.retries < waits
    attempt = f"{self.request.id}:{self.request.retries}" if self.request.id else ""
    if attempt:
        _attempt_begin(scan_id, version, attempt)
    try:
        item = drift_scan_record(
            scan=scan, version=version, worker=self.request.hostname or "", wait_if_locked=wait
        )
    except WindowLocked as exc:
        raise self.retry(exc=exc, countdown=every, max_retries=waits + 3) from exc
    finally:
        if attempt:
            _safely(cache.delete, _attempt_key(scan_id, version.pk))
    return item.outcome


def _attempt_key(scan_id: int, version_id: int) -> str:
    return f"drift:scan-attempt:{scan_id}:{version_id}"


def _attempt_begin(scan_id: int, version: ModelVersion, attempt: str) -> None:
    """Mark this attempt as running. The marker is deleted when an attempt ends (returns or
    retries); finding it with this attempt's own task id and retry count means the same delivery
    already ran and died (a pool child or worker killed: the message was redelivered), so the
    lease it took on the window belongs to a dead process: break it rather than wait it out.
    Were the holder alive after all (a duplicate delivery), both compute and the database
    fences (the lease only saves work); so does a lock store that fails here."""
    from drift.services.locks import scan_lock_break
    from drift.services.windows import DriftScanError, current_window

    key = _attempt_key(scan_id, version.pk)
    if _safely(cache.get, key) == attempt:
        try:
            window = current_window(version)
        except DriftScanError:
            pass  # no window to have leased: the scan records why
        else:
            _safely(scan_lock_break, version.pk, window.start)
            logger.warning(
                "drift scan of %s: attempt %s was lost mid-scan, its lease on the window is broken",
                version,
                attempt,
            )
    _safely(cache.set, key, attempt, SCAN_TIME_LIMIT_SECONDS + 60)


def _safely(operation, *args: object) -> object:  # noqa: ANN001
    try:
        return operation(*args)
    except Exception as exc:  # the marker only speeds recovery up: never fail a scan on it
        logger.info("drift scan attempt marker unavailable: %s", exc)
        return None


@shared_task(bind=True, max_retries=None, soft_time_limit=60, time_limit=90)
def drift_webhook_deliver_task(self, delivery_id: int) -> str:  # noqa: ANN001
    """One attempt; a retryable failure schedules the next (the service counts attempts)."""
    from drift.webhooks import drift_webhook_deliver

    attempt = drift_webhook_deliver(delivery_id=delivery_id)
    if attempt.outcome == "retry" and not self.request.is_eager:
        raise self.retry(countdown=attempt.retry_in)
    return attempt.outcome
