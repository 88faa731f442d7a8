from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from drift.models import DriftScan
from registry.selectors import production_versions
from tradingsite.events import event_publish

logger = logging.getLogger(__name__)


def drift_scan_all(*, trigger: str = "schedule") -> DriftScan:
    """Scan every model version in Production and record the pass as a DriftScan row.

    A version is scanned against the reference statistics stored with it at registration; a
    version without them is reported in the scan's detail, not silently skipped.
    """
    scan = DriftScan.objects.create(started_at=timezone.now(), trigger=trigger)
    versions = list(production_versions())
    scan.models_watched = len(versions)
    if versions:
        names = ", ".join(f"{v.model.name} v{v.version}" for v in versions)
        scan.detail = f"no reference statistics stored for: {names}"
    else:
        scan.detail = "no models in PRODUCTION"
    scan.status = DriftScan.Status.COMPLETE
    scan.finished_at = timezone.now()
    with transaction.atomic():
        scan.save()
        event_publish(
            type="drift.scan.completed",
            subject=f"scan:{scan.pk}",
            payload={
                "scan_id": scan.pk,
                "trigger": scan.trigger,
                "models_watched": scan.models_watched,
                "reports_created": scan.reports_created,
                "detail": scan.detail,
            },
        )
    logger.info(
        "Drift scan complete: %d model(s) watched, %d report(s) (%s)",
        scan.models_watched,
        scan.reports_created,
        scan.detail,
    )
    return scan
