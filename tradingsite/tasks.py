from __future__ import annotations

import socket

from celery import shared_task
from django.utils import timezone

from tradingsite.models import SchedulerHeartbeat


@shared_task(ignore_result=True)
def scheduler_heartbeat_task() -> None:
    """Beat sends this every SCHEDULER_HEARTBEAT_SECONDS; its row shows the scheduler is alive."""
    SchedulerHeartbeat.objects.update_or_create(
        name="beat", defaults={"last_beat_at": timezone.now(), "hostname": socket.gethostname()}
    )


@shared_task(ignore_result=True)
def events_prune_task() -> int:
    """Daily: drop outbox rows older than EVENT_RETENTION_DAYS (the newest per topic stays)."""
    from tradingsite.events import events_prune

    return events_prune()
