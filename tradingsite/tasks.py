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
