from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Min, QuerySet

from features.models import Bar, FeatureDefinition, FeatureView


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
