from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def drift_scan_all_task(trigger: str = "schedule") -> int:
    from drift.services import drift_scan_all

    return drift_scan_all(trigger=trigger).pk
