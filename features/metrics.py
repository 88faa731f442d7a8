"""Feature-store gauges for /metrics, set by the materialization service."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Gauge

from features.models import FeatureView

QUALITY = Gauge(
    "tradingsite_feature_quality_score",
    "Quality score 0-100 of the last materialization, per view and feature ('_view' = overall)",
    ["view", "feature"],
    multiprocess_mode="max",
)
FRESHNESS = Gauge(
    "tradingsite_feature_newest_bar_timestamp_seconds",
    "Close time of the newest materialized bar, per view (freshness = now - this)",
    ["view"],
    multiprocess_mode="max",
)


def record_view_quality(
    *, view: FeatureView, quality: dict[str, object], newest: datetime | None
) -> None:
    QUALITY.labels(view=view.name, feature="_view").set(float(quality["score"]))  # type: ignore[arg-type]
    for name, parts in quality["features"].items():  # type: ignore[union-attr]
        QUALITY.labels(view=view.name, feature=name).set(parts["score"])
    if newest is not None:
        FRESHNESS.labels(view=view.name).set(newest.timestamp())
