from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Min, QuerySet

from features.models import Bar, FeatureDefinition, FeatureView, MaterializationJob


def feature_store_counts() -> dict[str, object]:
    """Counts for /api/v1/ml/status and the startup banner."""
    view_names = FeatureView.objects.values("name").distinct().count()
    return {
        "features": FeatureDefinition.objects.count(),
        "views": view_names,
        "view_versions": FeatureView.objects.count(),
        "default_view": settings.DEFAULT_FEATURE_VIEW,
        "default_view_registered": FeatureView.objects.filter(
            name=settings.DEFAULT_FEATURE_VIEW
        ).exists(),
    }


def market_symbols() -> QuerySet[Bar, dict[str, Any]]:
    """Each (symbol, timeframe) with its bar count and first and last bar time: one GROUP BY."""
    return (
        Bar.objects.values("symbol", "timeframe")
        .annotate(bars=Count("id"), first_ts=Min("ts"), last_ts=Max("ts"))
        .order_by("symbol", "timeframe")
    )


def bars_for(
    *, symbol: str, timeframe: str, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[Bar]:
    """Bars of one series in time order, with start <= ts <= end when given (one index range)."""
    queryset = Bar.objects.filter(symbol=symbol, timeframe=timeframe)
    if start is not None:
        queryset = queryset.filter(ts__gte=start)
    if end is not None:
        queryset = queryset.filter(ts__lte=end)
    return queryset.order_by("ts")


# --- dashboards (features pages, overview) ----------------------------------------------------


def feature_views_latest() -> list[FeatureView]:
    """The newest version of each view name, with `version_count` (one query)."""
    from django.db.models import OuterRef, Subquery

    newest = FeatureView.objects.filter(name=OuterRef("name")).order_by("-version").values("pk")
    counts = dict(
        FeatureView.objects.values("name").annotate(n=Count("id")).values_list("name", "n")
    )
    views = list(FeatureView.objects.filter(pk=Subquery(newest[:1])).prefetch_related("features"))
    for view in views:
        view.version_count = counts.get(view.name, 1)
    return sorted(views, key=lambda v: v.name)


def feature_view_versions(*, name: str) -> QuerySet[FeatureView]:
    return FeatureView.objects.filter(name=name).order_by("-version")


def feature_views_latest_quality(*, view_ids: list[int]) -> dict[int, MaterializationJob]:
    """Per view version: its newest succeeded materialization (holding the quality scores)."""
    jobs: dict[int, MaterializationJob] = {}
    succeeded = MaterializationJob.objects.filter(
        view_id__in=view_ids, status=MaterializationJob.Status.SUCCEEDED
    ).order_by("view_id", "-finished_at", "-id")
    for job in succeeded.defer("partials"):
        jobs.setdefault(job.view_id, job)
    return jobs


def feature_view_quality_history(*, view: FeatureView, limit: int = 60) -> list[dict[str, Any]]:
    """The quality of the view version's last `limit` succeeded materializations, oldest first:
    {"job_id", "at", "score", "features": {name: score}}."""
    jobs = (
        MaterializationJob.objects.filter(view=view, status=MaterializationJob.Status.SUCCEEDED)
        .exclude(finished_at=None)
        .order_by("-finished_at", "-id")
        .only("id", "finished_at", "quality")[:limit]
    )
    history = []
    for job in reversed(list(jobs)):
        quality = job.quality or {}
        features = {
            name: parts.get("score")
            for name, parts in (quality.get("features") or {}).items()
            if isinstance(parts, dict)
        }
        history.append(
            {"job_id": job.pk, "at": job.finished_at, "score": quality.get("score"),
             "features": features}
        )  # fmt: skip
    return history


def materialization_jobs_recent(
    *, view: FeatureView | None = None, view_name: str | None = None, limit: int = 20
) -> QuerySet[MaterializationJob]:
    jobs = MaterializationJob.objects.select_related("view").defer("partials")
    if view is not None:
        jobs = jobs.filter(view=view)
    if view_name is not None:
        jobs = jobs.filter(view__name=view_name)
    return jobs.order_by("-created_at", "-id")[:limit]


def feature_view_freshness(*, view: FeatureView, now: datetime | None = None) -> dict[str, Any]:
    """How old the view's newest materialized bar is against its ttl, overall and per symbol
    (from its newest succeeded job): {"age_seconds", "ttl_seconds", "stale", "symbols": [...]}."""
    from django.utils import timezone

    now = now or timezone.now()
    age = None if view.watermark is None else (now - view.watermark).total_seconds()
    job = (
        MaterializationJob.objects.filter(view=view, status=MaterializationJob.Status.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .only("partials")
        .first()
    )
    symbols = []
    for symbol, partial in sorted(((job.partials if job else None) or {}).items()):
        newest = partial.get("newest") if isinstance(partial, dict) else None
        stamp = datetime.fromisoformat(newest) if newest else None
        symbol_age = None if stamp is None else (now - stamp).total_seconds()
        symbols.append(
            {"symbol": symbol, "newest": stamp, "age_seconds": symbol_age,
             "stale": symbol_age is None or symbol_age > view.ttl_seconds,
             "rows_written": partial.get("rows_written"), "worker": partial.get("worker", "")}
        )  # fmt: skip
    return {
        "watermark": view.watermark,
        "age_seconds": age,
        "ttl_seconds": view.ttl_seconds,
        "stale": age is None or age > view.ttl_seconds,
        "symbols": symbols,
    }
