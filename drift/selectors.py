"""Drift reads: the monitor's state, reports with filters, per-feature timelines, the open drift
the promotion policy looks at, and the thresholds a scan uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from drift.constants import FEATURE_COLUMNS
from drift.models import (
    SEVERITY_RANK,
    DriftFeatureResult,
    DriftReport,
    DriftScan,
    DriftThresholdOverride,
    Severity,
)
from features.models import FeatureView
from registry.models import ModelVersion
from registry.selectors import production_versions

SCHEDULED_TRIGGERS = (DriftScan.Trigger.SCHEDULE, DriftScan.Trigger.STARTUP)


# A version's reference statistics are hundreds of kB of JSON that no report listing reads.
_HEAVY_VERSION_FIELDS = ("model_version__reference_statistics",)


def open_high_drift(*, model_version: ModelVersion) -> DriftReport | None:
    """The version's open HIGH drift: its latest report (by window) if that is HIGH. A newer
    report below HIGH closes it. The promotion policy's `no_open_high_drift` rule reads this."""
    latest = (
        DriftReport.objects.filter(model_version=model_version)
        .order_by("-window_end", "-created_at", "-id")
        .first()
    )
    return latest if latest is not None and latest.severity == Severity.HIGH else None


def latest_production_reports(*, with_features: bool = False) -> list[DriftReport]:
    """The latest report of each Production version, with its model (and feature results)."""
    latest = (
        DriftReport.objects.filter(model_version=OuterRef("pk"))
        .order_by("-window_end", "-id")
        .values("pk")[:1]
    )
    ids = [
        pk
        for pk in production_versions()
        .annotate(latest=Subquery(latest))
        .values_list("latest", flat=True)
        if pk is not None
    ]
    reports = (
        DriftReport.objects.filter(pk__in=ids)
        .select_related("model_version__model")
        .defer(*_HEAVY_VERSION_FIELDS)
    )
    if with_features:
        only = DriftFeatureResult.objects.only("report_id", "name", "severity")
        reports = reports.prefetch_related(Prefetch("features", queryset=only))
    return list(reports.order_by("model_version__model__name"))


def drift_monitor_state() -> dict[str, Any]:
    """What the drift monitor watches, when it last scanned, when it scans next, what is open."""
    last = DriftScan.objects.first()
    scheduled = DriftScan.objects.filter(trigger__in=SCHEDULED_TRIGGERS).first()
    interval = timedelta(seconds=settings.DRIFT_INTERVAL_SECONDS)
    # Beat fires an interval after its last scan; before the first, count from any scan.
    paced_by = scheduled or last
    reports = latest_production_reports()
    return {
        "interval_seconds": settings.DRIFT_INTERVAL_SECONDS,
        "models_watched": sorted(f"{v.model.name}:v{v.version}" for v in production_versions()),
        "last_scan": None if last is None else scan_summary(last),
        "last_scheduled_scan_at": scheduled.started_at.isoformat() if scheduled else None,
        "next_scan_due": (paced_by.started_at + interval).isoformat() if paced_by else None,
        "scans_total": DriftScan.objects.count(),
        "latest_reports": [
            {
                "report_id": r.pk,
                "model": r.model_version.model.name,
                "version": r.model_version.version,
                "severity": r.severity,
                "window_end": r.window_end.isoformat(),
                "escalated": r.escalated,
            }
            for r in reports
        ],
        "open_high_drift": sorted(
            f"{r.model_version.model.name}:v{r.model_version.version}"
            for r in reports
            if r.severity == Severity.HIGH
        ),
    }


def scan_summary(scan: DriftScan) -> dict[str, Any]:
    return {
        "id": scan.pk,
        "status": scan.status,
        "trigger": scan.trigger,
        "started_at": scan.started_at.isoformat(),
        "finished_at": scan.finished_at.isoformat() if scan.finished_at else None,
        "models_watched": scan.models_watched,
        "reports_created": scan.reports_created,
        "duplicates": scan.duplicates,
        "skipped": scan.skipped,
        "failed": scan.failed,
        "detail": scan.detail,
    }


@dataclass(frozen=True)
class ReportFilter:
    model: str = ""
    version: int | None = None
    severities: tuple[str, ...] = ()
    min_severity: str = ""
    since: datetime | None = None  # window_end >= since
    until: datetime | None = None  # window_end <= until
    escalated: bool | None = None
    source: str = ""


def drift_reports(*, filters: ReportFilter | None = None) -> QuerySet[DriftReport]:
    """Reports, newest window first, filtered on allow-listed fields only."""
    f = filters or ReportFilter()
    reports = DriftReport.objects.select_related("model_version__model", "feature_view").defer(
        *_HEAVY_VERSION_FIELDS
    )
    if f.model:
        reports = reports.filter(model_version__model__name=f.model)
    if f.version is not None:
        reports = reports.filter(model_version__version=f.version)
    if f.severities:
        reports = reports.filter(severity__in=f.severities)
    if f.min_severity:
        rank = SEVERITY_RANK[f.min_severity]
        reports = reports.filter(severity__in=[s for s, r in SEVERITY_RANK.items() if r >= rank])
    if f.since is not None:
        reports = reports.filter(window_end__gte=f.since)
    if f.until is not None:
        reports = reports.filter(window_end__lte=f.until)
    if f.escalated is not None:
        reports = reports.filter(escalated=f.escalated)
    if f.source:
        reports = reports.filter(source=f.source)
    return reports.order_by("-window_end", "-id")


def drift_report_detail(*, pk: int) -> DriftReport:
    """One report with its feature results (DoesNotExist if absent)."""
    return (
        DriftReport.objects.select_related("model_version__model", "feature_view", "scan")
        .defer(*_HEAVY_VERSION_FIELDS)
        .prefetch_related(Prefetch("features", queryset=DriftFeatureResult.objects.order_by("id")))
        .get(pk=pk)
    )


def drift_feature_timeline(
    *,
    model: str,
    version: int | None = None,
    features: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Per feature, its severity and main statistics in the model's latest `limit` reports (in
    window order, oldest first), for charts: {"reports": [...], "features": {name: [points]}}."""
    reports = drift_reports(
        filters=ReportFilter(model=model, version=version, since=since, until=until)
    )
    chosen = list(reports[:limit])[::-1]
    rows = DriftFeatureResult.objects.filter(report__in=[r.pk for r in chosen]).order_by("id")
    if features:
        rows = rows.filter(name__in=features)
    by_report: dict[int, list[DriftFeatureResult]] = {}
    for row in rows.defer("statistics"):
        by_report.setdefault(row.report_id, []).append(row)
    series: dict[str, list[dict[str, Any]]] = {}
    for report in chosen:
        for row in by_report.get(report.pk, []):
            series.setdefault(row.name, []).append(
                {
                    "report_id": report.pk,
                    "version": report.model_version.version,
                    "window_end": report.window_end.isoformat(),
                    "severity": row.severity,
                    "severity_rank": SEVERITY_RANK[row.severity],
                    "drifted": row.drifted,
                    **{column: getattr(row, column) for column in FEATURE_COLUMNS},
                }
            )
    return {
        "model": model,
        "reports": [
            {
                "report_id": r.pk,
                "version": r.model_version.version,
                "window_start": r.window_start.isoformat(),
                "window_end": r.window_end.isoformat(),
                "severity": r.severity,
                "share_drifted": r.share_drifted,
            }
            for r in chosen
        ],
        "features": dict(sorted(series.items())),
    }


def drift_scans() -> QuerySet[DriftScan]:
    return DriftScan.objects.select_related("requested_by").order_by("-started_at", "-id")


def drift_scan_detail(*, pk: int) -> DriftScan:
    return (
        DriftScan.objects.select_related("requested_by")
        .prefetch_related("items__model_version__model", "items__report")
        .get(pk=pk)
    )


def drift_thresholds_for(*, view: FeatureView | None) -> dict[str, Any] | None:
    """The threshold overrides configured for the view's name (every version), or None."""
    if view is None:
        return None
    row = DriftThresholdOverride.objects.filter(feature_view_name=view.name).first()
    return dict(row.thresholds) if row is not None and row.thresholds else None


def drift_reports_latest(*, version_ids: list[int]) -> dict[int, DriftReport]:
    """Each version's newest report (by window end), keyed by version id."""
    latest: dict[int, DriftReport] = {}
    reports = DriftReport.objects.filter(model_version_id__in=version_ids).order_by(
        "model_version_id", "-window_end", "-id"
    )
    for report in reports:
        latest.setdefault(report.model_version_id, report)
    return latest


def drift_severity_timeline(*, days: int = 30, now: datetime | None = None) -> list[dict[str, Any]]:
    """The reports whose window ended in the last `days` days, oldest first, as plain rows for a
    models × time heatmap: {"report_id", "model", "version", "at" (window end), "severity"}."""
    start = (now or timezone.now()) - timedelta(days=days)
    rows = (
        DriftReport.objects.filter(window_end__gte=start)
        .order_by("window_end", "id")
        .values_list(
            "pk", "model_version__model__name", "model_version__version", "window_end", "severity"
        )
    )
    return [
        {"report_id": pk, "model": model, "version": version, "at": at, "severity": severity}
        for pk, model, version, at, severity in rows
    ]
