"""Feature store dashboards: views and their versions, features with their definitions, quality
per feature over time, freshness, and materialization jobs with live progress."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from features.charts import freshness_bars, quality_heatmap, quality_parts, quality_trend
from features.models import FeatureDefinition, FeatureView, MaterializationJob
from features.selectors import (
    feature_view_freshness,
    feature_view_quality_history,
    feature_view_versions,
    feature_views_latest,
    feature_views_latest_quality,
    materialization_jobs_recent,
)
from tradingsite.dashboard.access import dashboard_view
from tradingsite.dashboard.figures import figure_json
from tradingsite.dashboard.roles import FEATURES_PERMISSION

JOBS_SHOWN = 15


@dashboard_view(FEATURES_PERMISSION)
def feature_list(request: HttpRequest) -> HttpResponse:
    jobs = materialization_jobs_recent(limit=JOBS_SHOWN)
    if request.GET.get("fragment") == "jobs":
        return render(request, "features/_jobs.html", {"jobs": jobs})
    views = feature_views_latest()
    quality = feature_views_latest_quality(view_ids=[v.pk for v in views])
    rows = [
        {
            "view": view,
            "job": quality.get(view.pk),
            "freshness": feature_view_freshness(view=view),
        }
        for view in views
    ]
    context = {
        "rows": rows,
        "definitions": FeatureDefinition.objects.prefetch_related("views").order_by("name"),
        "jobs": jobs,
    }
    return render(request, "features/feature_list.html", context)


def _definitions(view: FeatureView) -> list[dict[str, Any]]:
    """The view version's features in its column order, each with its definition."""
    found = {d.name: d for d in FeatureDefinition.objects.filter(name__in=view.feature_names)}
    return [{"name": name, "definition": found.get(name)} for name in view.feature_names]


@dashboard_view(FEATURES_PERMISSION)
def feature_view_detail(request: HttpRequest, name: str) -> HttpResponse:
    versions = list(feature_view_versions(name=name))
    if not versions:
        raise Http404(f"no feature view {name!r}")
    wanted = request.GET.get("version", "")
    view = next((v for v in versions if str(v.version) == wanted), versions[0])
    jobs = materialization_jobs_recent(view=view, limit=JOBS_SHOWN)
    if request.GET.get("fragment") == "jobs":
        return render(request, "features/_jobs.html", {"jobs": jobs, "hide_view": True})
    history = feature_view_quality_history(view=view)
    latest = history[-1] if history else None
    freshness = feature_view_freshness(view=view)
    features = _definitions(view)
    for feature in features:
        feature["quality"] = None if latest is None else latest["features"].get(feature["name"])
    context = {
        "view": view,
        "versions": versions,
        "features": features,
        "latest_quality": latest,
        "freshness": freshness,
        "jobs": jobs,
        "hide_view": True,
        "quality_min": settings.FEATURE_QUALITY_MIN,
        "heatmap_chart": figure_json(quality_heatmap(history, features=view.feature_names)),
        "trend_chart": figure_json(quality_trend(history, threshold=settings.FEATURE_QUALITY_MIN)),
        "freshness_chart": figure_json(
            freshness_bars(freshness["symbols"], ttl_seconds=view.ttl_seconds)
        ),
    }
    return render(request, "features/view_detail.html", context)


@dashboard_view(FEATURES_PERMISSION)
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(MaterializationJob.objects.select_related("view"), pk=job_id)
    partials = sorted((job.partials or {}).items())
    pending = [s for s in job.symbols if s not in (job.partials or {})]
    context = {"job": job, "partials": partials, "pending": pending}
    if request.GET.get("fragment") == "progress":
        return render(request, "features/_job_progress.html", context)
    context["parts_chart"] = figure_json(quality_parts(job.quality or {}))
    return render(request, "features/job_detail.html", context)
