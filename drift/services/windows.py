"""The current window a drift scan compares with a version's reference: where its rows come from.

Sources are tried in order (`WINDOW_SOURCES`); the first that has enough data gives the window,
and the report records which one it was:
1. "predictions": the feature vectors the version was actually served (registry.PredictionLog),
   with the P(up) it answered, for bars within DRIFT_WINDOW_BARS timeframes of the newest
   predicted bar; one row per (symbol, bar), the latest logged, since a client asking every
   minute about a daily bar logs the same input many times and would otherwise weigh it many
   times. Used when it has at least DRIFT_MIN_PREDICTION_ROWS rows;
2. "features": the materialized features of the version's training symbols in its feature
   view version, over the same number of bars.
A source that lacks enough rows answers None and the next one is tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Max

from features.store import timeframe_seconds
from registry.models import ModelVersion, PredictionLog


class DriftScanError(ValueError):
    """A version cannot be scanned; the message says why (no reference, no recent features)."""


@dataclass(frozen=True)
class Window:
    """Rows × features in the version's feature view order, the symbol of each row (rows are in
    time order within a symbol), the first and last bar time, where the rows came from, and
    for logged predictions the P(up) served for each row (None for materialized features,
    which no model has seen: prediction drift then runs the model on them)."""

    matrix: np.ndarray
    series: list[str]
    start: datetime
    end: datetime
    source: str  # drift.models.DriftReport.Source
    predictions: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def symbols(self) -> list[str]:
        return sorted(set(self.series))


def window_from_features(version: ModelVersion) -> Window:
    """The version's training symbols' materialized rows within DRIFT_WINDOW_BARS timeframes of
    the newest one (60 days for daily bars by default), in its feature view version."""
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
    window = list(
        rows.filter(ts__gt=since).order_by("symbol", "ts").values_list("symbol", "ts", "values")
    )
    stamps = [ts for _, ts, _ in window]
    if len(window) < 2 or min(stamps) == max(stamps):
        raise DriftScanError(f"fewer than two bars in the window ending {newest:%Y-%m-%d %H:%M}")
    return Window(
        matrix=np.array([values for _, _, values in window], dtype=float),
        series=[symbol for symbol, _, _ in window],
        start=min(stamps),
        end=max(stamps),
        source="features",
    )


def window_from_predictions(version: ModelVersion) -> Window | None:
    """The inputs the version was served, deduplicated per (symbol, bar), over the
    DRIFT_WINDOW_BARS bars before its newest predicted one; None below
    DRIFT_MIN_PREDICTION_ROWS rows (or with no feature view to bound the window by)."""
    view = version.feature_view
    logged = PredictionLog.objects.filter(model_version=version)
    newest = logged.aggregate(newest=Max("as_of"))["newest"]
    if view is None or newest is None:
        return None
    since = newest - timedelta(
        seconds=timeframe_seconds(view.timeframe) * settings.DRIFT_WINDOW_BARS
    )
    recent = logged.filter(as_of__gt=since)
    if connection.vendor == "postgresql":
        # One row per (symbol, bar) chosen by the database: a busy client logs the same bar
        # thousands of times, which need not cross the wire.
        recent = recent.order_by("symbol", "as_of", "-created_at", "-id").distinct(
            "symbol", "as_of"
        )
    else:
        recent = recent.order_by("symbol", "as_of", "created_at", "id")
    latest: dict[tuple[str, datetime], tuple[list[float], float | None]] = {}
    for symbol, as_of, features, probability in recent.values_list(
        "symbol", "as_of", "features", "probability"
    ).iterator(chunk_size=5000):
        # elsewhere ordered oldest first: the last wins
        latest[(symbol, as_of)] = (features, probability)
    if len(latest) < settings.DRIFT_MIN_PREDICTION_ROWS:
        return None
    keys = list(latest)  # in (symbol, as_of) order
    width = len(view.feature_names)
    matrix = np.array(
        [[np.nan if v is None else v for v in latest[key][0]] for key in keys], dtype=float
    ).reshape(len(keys), width)
    probabilities = np.array(
        [np.nan if latest[key][1] is None else latest[key][1] for key in keys], dtype=float
    )
    stamps = [as_of for _, as_of in keys]
    if min(stamps) == max(stamps):
        return None
    return Window(
        matrix=matrix,
        series=[symbol for symbol, _ in keys],
        start=min(stamps),
        end=max(stamps),
        source="predictions",
        predictions=probabilities,
    )


# Each source returns a window, None when it has too little data (the next source is tried),
# or raises DriftScanError. The last source's error is the scan's.
WINDOW_SOURCES: list[Callable[[ModelVersion], Window | None]] = [
    window_from_predictions,
    window_from_features,
]


def current_window(version: ModelVersion) -> Window:
    """The version's recent live data from the first source in WINDOW_SOURCES that has enough."""
    for source in WINDOW_SOURCES:
        window = source(version)
        if window is not None:
            return window
    raise DriftScanError("no source has enough recent data")
