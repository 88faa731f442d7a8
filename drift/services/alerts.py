"""Drift alerts: a HIGH report raises `drift.alert`; the DRIFT_ESCALATE_AFTER-th HIGH report in a
row for one model version also raises `drift.alert.escalated` (once per run of HIGH reports; the
reports after it keep `escalated=True`). Each alert is queued for every configured webhook in the
report's transaction (an outbox of deliveries), and sent after commit by a Celery task.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from drift.metrics import ALERTS
from drift.models import DriftReport, DriftWebhookDelivery
from tradingsite.events import event_publish

ALERT = "drift.alert"
ESCALATED = "drift.alert.escalated"


def drift_alert_raise(*, report: DriftReport, payload: dict[str, Any]) -> list[str]:
    """Publish the report's alert event(s) and queue their webhooks; call inside the report's
    transaction. Returns the event types published."""
    level = "escalated" if report.escalated else "alert"
    types = [ALERT]
    if report.consecutive_high == settings.DRIFT_ESCALATE_AFTER:
        types.append(ESCALATED)
    deliveries = []
    for event_type in types:
        event = event_publish(
            type=event_type,
            subject=f"model:{payload['model']}",
            payload={**payload, "level": level},
        )
        body = {
            "id": event.pk,
            "type": event_type,
            "created_at": event.created_at.isoformat(),
            "payload": event.payload,
        }
        deliveries += [
            DriftWebhookDelivery.objects.create(
                report=report, event_type=event_type, url=url, body=body
            )
            for url in settings.DRIFT_WEBHOOK_URLS
        ]
    ids = [delivery.pk for delivery in deliveries]

    def after_commit() -> None:
        from drift.tasks import drift_webhook_deliver_task

        for event_type in types:
            ALERTS.labels(level="escalated" if event_type == ESCALATED else "alert").inc()
        for delivery_id in ids:
            drift_webhook_deliver_task.delay(delivery_id)

    transaction.on_commit(after_commit, robust=True)  # a broker outage leaves rows pending
    return types
