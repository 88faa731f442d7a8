from __future__ import annotations

import logging
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from drift.models import DriftReport, DriftScan
from drift.statistics import drift_statistics
from features.store import timeframe_seconds
from registry.models import ModelVersion
from registry.selectors import production_versions
from tradingsite.events import event_publish

logger = logging.getLogger(__name__)


def drift_scan_all(*, trigger: str = "schedule") -> DriftScan:
    """Scan every model version in Production and record the pass as a DriftScan row.

    Each version's recent window of materialized features (its training symbols' bars of the
    last DRIFT_WINDOW_BARS timeframes, in the feature view version it was trained on) is compared
    with the
    reference statistics stored with it at registration. A version without them is named in
    the scan's detail, not silently skipped. One report per (version, window): a scan of a
    window that already has a report (another worker, a second beat) is a no-op.
    """
    scan = DriftScan.objects.create(started_at=timezone.now(), trigger=trigger)
    versions = list(production_versions().select_related("feature_view"))
    scan.models_watched = len(versions)
    notes = []
    for version in versions:
        try:
            report, created = drift_scan_version(version)
        except DriftScanError as exc:
            notes.append(f"{version.model.name} v{version.version}: {exc}")
            continue
        scan.reports_created += int(created)
        already = "" if created else " (window already reported)"
        notes.append(
            f"{version.model.name} v{version.version}: {report.severity}, "
            f"{report.share_drifted:.0%} of features drifted{already}"
        )
    scan.detail = "; ".join(notes) if versions else "no models in PRODUCTION"
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


class DriftScanError(ValueError):
    """A version cannot be scanned; the message says why (no reference, no recent features)."""


def current_window(version: ModelVersion) -> tuple[np.ndarray, datetime, datetime]:
    """The version's recent features: rows × features of its training symbols' bars within
    DRIFT_WINDOW_BARS timeframes of the newest one (60 days for daily bars by default), in its
    feature view version, and the window's first and last bar time."""
    view = version.feature_view
    if view is None:
        raise DriftScanError("no feature view recorded with the version")
    symbols = list((version.training_set or {}).get("symbols") or [])
    rows = view.rows.filter(symbol__in=symbols) if symbols else view.rows.all()
    newest = rows.aggregate(newest=Max("ts"))["newest"]
    if newest is None:
        raise DriftScanError(f"no materialized rows in {view}")
    since = newest - timedelta(
        seconds=timeframe_seconds(view.timeframe) * settings.DRIFT_WINDOW_BARS
    )
    window = list(rows.filter(ts__gt=since).values_list("ts", "values"))
    matrix = np.array([values for _, values in window], dtype=float)
    stamps = [ts for ts, _ in window]
    if len(window) < 2 or min(stamps) == max(stamps):
        raise DriftScanError(f"fewer than two bars in the window ending {newest:%Y-%m-%d %H:%M}")
    return matrix, min(stamps), max(stamps)


def drift_scan_version(version: ModelVersion) -> tuple[DriftReport, bool]:
    """The version's report for its current window: (report, created)."""
    if not version.reference_statistics:
        raise DriftScanError("no reference statistics stored with the version")
    matrix, start, end = current_window(version)
    existing = DriftReport.objects.filter(model_version=version, window_start=start).first()
    if existing is not None:
        return existing, False
    result = drift_statistics(
        version.reference_statistics, matrix, list(version.feature_view.feature_names)
    )
    share = result.summary.drift_share
    try:
        with transaction.atomic():
            report = DriftReport.objects.create(
                model_version=version,
                feature_view=version.feature_view,
                window_start=start,
                window_end=end,
                severity=str(result.severity),
                share_drifted=float(share) if share == share else 0.0,  # NaN: nothing tested
            )
            event_publish(
                type="drift.report.created",
                subject=f"model:{version.model.name}",
                payload={
                    "report_id": report.pk,
                    "model": version.model.name,
                    "version": version.version,
                    "severity": report.severity,
                    "share_drifted": report.share_drifted,
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                },
            )
    except IntegrityError:  # the fence: another scan wrote this window first
        return DriftReport.objects.get(model_version=version, window_start=start), False
    return report, True
