"""The Celery app. The beat schedule lives here, in code, one commented line per job (STYLE §7)."""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta

from celery import Celery
from celery.schedules import crontab, schedstate, schedule
from celery.signals import beat_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

app = Celery("tradingsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class slot_schedule(schedule):  # noqa: N801 - named like celery's own schedule classes
    """Due once per slot of `run_every` seconds counted from the epoch (the interval slots that
    drift_scan_schedule claims), at the middle of the slot.

    Celery's plain interval counts from the last send, and beat sends late (real beats measured
    10-30 ms per send at a 3-s interval): the phase creeps, and when it crosses a slot boundary
    that slot gets no scan (tests/drift/test_celery_fence_schedule.py). Here every beat fires at
    the same point of every slot, so a second beat's send is refused by the claim as a no-op, and
    the task, which takes the slot of the moment it runs, may run up to half an interval late
    (queue backlog) or on a host whose clock is that far off and still claim its own slot."""

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        period = self.seconds
        last = self.maybe_make_aware(last_run_at).timestamp()
        fire = (math.floor(last / period - 0.5) + 1.5) * period  # the first mid-slot after it
        return timedelta(seconds=fire - self.maybe_make_aware(self.now()).timestamp())

    def is_due(self, last_run_at: datetime) -> schedstate:
        remaining = self.remaining_estimate(last_run_at).total_seconds()
        if remaining > 0:
            return schedstate(is_due=False, next=remaining)
        following = self.remaining_estimate(self.now()).total_seconds()
        return schedstate(is_due=True, next=max(following, 0.0))


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **_: object) -> None:
    from django.conf import settings

    sender.conf.beat_schedule = {
        # every SCHEDULER_HEARTBEAT_SECONDS (60 s): proves beat + a worker live (/api/v1/health)
        "scheduler-heartbeat": {
            "task": "tradingsite.tasks.scheduler_heartbeat_task",
            "schedule": float(settings.SCHEDULER_HEARTBEAT_SECONDS),
        },
        # daily at 03:17 UTC: prune outbox events older than EVENT_RETENTION_DAYS (30)
        "events-prune": {
            "task": "tradingsite.tasks.events_prune_task",
            "schedule": crontab(hour=3, minute=17),
        },
        # every DRIFT_INTERVAL_SECONDS (3600 s), mid-slot: drift scan of the models in PRODUCTION
        "drift-scan": {
            "task": "drift.tasks.drift_scan_all_task",
            "schedule": slot_schedule(settings.DRIFT_INTERVAL_SECONDS),
        },
    }


def _embedded_broker() -> bool:
    # kombu's filesystem transport: `worker -B` runs beat inside the worker (make run).
    return str(app.conf.broker_url).startswith("filesystem://")


def _send_startup_tasks() -> None:
    """Interval jobs first fire one interval after beat starts; the heartbeat and the drift scan
    (seed §3 step 5: the monitor starts with the models in PRODUCTION) should not wait that long."""
    app.send_task("tradingsite.tasks.scheduler_heartbeat_task")
    app.send_task("drift.tasks.drift_scan_all_task", kwargs={"trigger": "startup"})


@beat_init.connect
def _run_at_scheduler_start(sender: object, **_: object) -> None:
    # With the filesystem broker, wait for worker_ready instead: kombu rewrites its exchange
    # files while the worker binds its queues, and a send in that moment reads a truncated file.
    if not _embedded_broker():
        _send_startup_tasks()


@worker_ready.connect
def _run_at_worker_start(sender: object, **_: object) -> None:
    """Seed §3 step 5: the default feature view is registered and materialized if absent."""
    app.send_task("features.tasks.feature_view_ensure_default_task")
    if _embedded_broker():
        _send_startup_tasks()
