from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from drift.models import DriftReport, DriftScan
from registry.models import ModelVersion
from registry.selectors import production_versions


def drift_monitor_state() -> dict[str, object]:
    """What the drift monitor watches, when it last scanned and when it scans next."""
    last = DriftScan.objects.first()
    interval = timedelta(seconds=settings.DRIFT_INTERVAL_SECONDS)
    return {
        "interval_seconds": settings.DRIFT_INTERVAL_SECONDS,
        "models_watched": sorted(f"{v.model.name}:v{v.version}" for v in production_versions()),
        "last_scan": None
        if last is None
        else {
            "id": last.pk,
            "status": last.status,
            "started_at": last.started_at.isoformat(),
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
            "models_watched": last.models_watched,
            "reports_created": last.reports_created,
            "detail": last.detail,
        },
        "next_scan_due": (last.started_at + interval).isoformat() if last else None,
        "scans_total": DriftScan.objects.count(),
    }


def open_high_drift(*, model_version: ModelVersion) -> DriftReport | None:
    """The version's latest drift report if its severity is HIGH (the drift is still open)."""
    latest = (
        DriftReport.objects.filter(model_version=model_version)
        .order_by("-window_end", "-created_at", "-id")
        .first()
    )
    return latest if latest is not None and latest.severity == DriftReport.Severity.HIGH else None
