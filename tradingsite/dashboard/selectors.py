"""Reads of the overview and model pages that span apps, built on each app's selectors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from drift.models import DriftReport
from drift.selectors import ReportFilter, drift_reports
from features.selectors import feature_views_latest_quality
from registry.models import ModelVersion, Stage, StageTransition
from tradingsite.models import Event

APPLIED = (StageTransition.Outcome.APPLIED, StageTransition.Outcome.OVERRIDDEN)
# A version's reference statistics (a sample per feature: hundreds of kB of JSON) and training
# set are not shown next to reports: left out of queries that load versions with them.
LEAN_VERSION = ("model_version__reference_statistics", "model_version__training_set")


def production_overview() -> list[dict[str, Any]]:
    """Every version in Production with its latest drift report, the quality of its feature
    view version (latest succeeded materialization) and when it entered Production."""
    since = StageTransition.objects.filter(
        version=OuterRef("pk"), to_stage=Stage.PRODUCTION, outcome__in=APPLIED
    ).order_by("-created_at", "-id")
    versions = list(
        ModelVersion.objects.filter(stage=Stage.PRODUCTION)
        .defer("reference_statistics")
        .select_related("model", "feature_view")
        .annotate(in_production_since=Subquery(since.values("created_at")[:1]))
        .order_by("model__name")
    )
    reports = latest_reports(version_ids=[v.pk for v in versions])
    jobs = feature_views_latest_quality(
        view_ids=[v.feature_view_id for v in versions if v.feature_view_id]
    )
    rows = []
    for version in versions:
        job = jobs.get(version.feature_view_id)
        rows.append(
            {
                "version": version,
                "report": reports.get(version.pk),
                "quality": None if job is None else (job.quality or {}).get("score"),
            }
        )
    return rows


def latest_reports(*, version_ids: list[int]) -> dict[int, DriftReport]:
    """Each version's newest report (by window end), by version id. Like
    drift.selectors.latest_production_reports, without loading each version's reference
    statistics (hundreds of kB of JSON per version)."""
    newest = DriftReport.objects.filter(model_version=OuterRef("pk")).order_by("-window_end", "-id")
    ids = (
        ModelVersion.objects.filter(pk__in=version_ids)
        .annotate(report_id=Subquery(newest.values("pk")[:1]))
        .values_list("report_id", flat=True)
    )
    reports = DriftReport.objects.filter(pk__in=[pk for pk in ids if pk is not None])
    return {report.model_version_id: report for report in reports}


def model_latest_severities() -> dict[int, DriftReport]:
    """Per registered model (id): the newest report of its Production version."""
    versions = dict(
        ModelVersion.objects.filter(stage=Stage.PRODUCTION).values_list("pk", "model_id")
    )
    reports = latest_reports(version_ids=list(versions))
    return {versions[version_id]: report for version_id, report in reports.items()}


def severity_timeline(*, days: int = 30, now: datetime | None = None) -> list[dict[str, Any]]:
    """The drift reports of the last `days` days as plain rows for the models × time heatmap:
    {"report_id", "model", "version", "at" (window end), "severity"}."""
    start = (now or timezone.now()) - timedelta(days=days)
    rows = drift_reports(filters=ReportFilter(since=start)).values_list(
        "pk", "model_version__model__name", "model_version__version", "window_end", "severity"
    )
    return [
        {"report_id": pk, "model": model, "version": version, "at": at, "severity": severity}
        for pk, model, version, at, severity in rows
    ]


def version_reports(*, version: ModelVersion, limit: int = 20) -> list[DriftReport]:
    """A model version's newest drift reports."""
    filters = ReportFilter(model=version.model.name, version=version.version)
    return list(drift_reports(filters=filters).defer(*LEAN_VERSION)[:limit])


def recent_events(*, limit: int = 25) -> list[Event]:
    return list(Event.objects.order_by("-id")[:limit])
