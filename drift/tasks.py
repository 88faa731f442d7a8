"""Drift scans in Celery: the beat task claims the interval and sends one task per model version
(a group), so more workers finish a scan sooner; each version task records its item and the last
one finishes the scan (no result backend needed). Webhook deliveries retry with backoff.

With acks_late + reject_on_worker_lost (settings), a worker killed mid-scan gets its task
redelivered: the killed attempt left nothing (one transaction), the retry scans the window again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from celery import group, shared_task
from django.conf import settings
from django.db import OperationalError

if TYPE_CHECKING:
    from drift.models import DriftScan

SCAN_TIME_LIMIT_SECONDS = settings.DRIFT_SCAN_TIMEOUT_SECONDS
LOCKED_RETRY_SECONDS = 15


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def drift_scan_all_task(trigger: str = "schedule") -> int | None:
    """Beat's scan of every Production version (and a worker start's): None when another
    scheduler already ran this interval's. Also re-sends webhook deliveries whose task was lost."""
    from drift.services import drift_scan_schedule
    from drift.webhooks import drift_webhooks_stale

    for delivery_id in drift_webhooks_stale():
        drift_webhook_deliver_task.delay(delivery_id)
    scan = drift_scan_schedule(trigger=trigger)
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
    waits = math.ceil(settings.DRIFT_SCAN_LOCK_SECONDS / LOCKED_RETRY_SECONDS) + 1
    wait = not self.request.is_eager and self.request.retries < waits
    try:
        item = drift_scan_record(
            scan=scan, version=version, worker=self.request.hostname or "", wait_if_locked=wait
        )
    except WindowLocked as exc:
        raise self.retry(exc=exc, countdown=LOCKED_RETRY_SECONDS, max_retries=waits + 3) from exc
    return item.outcome


@shared_task(bind=True, max_retries=None, soft_time_limit=60, time_limit=90)
def drift_webhook_deliver_task(self, delivery_id: int) -> str:  # noqa: ANN001
    """One attempt; a retryable failure schedules the next (the service counts attempts)."""
    from drift.webhooks import drift_webhook_deliver

    attempt = drift_webhook_deliver(delivery_id=delivery_id)
    if attempt.outcome == "retry" and not self.request.is_eager:
        raise self.retry(countdown=attempt.retry_in)
    return attempt.outcome
