"""A scan's window from the prediction log: the inputs a version was actually served, one row
per (symbol, bar), used once there are enough of them; the materialized features otherwise."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest

from drift.services import current_window, drift_scan_version
from registry.models import ModelVersion, PredictionLog
from tests.drift.conftest import FEATURES, FIRST_DAY, SYMBOLS

pytestmark = pytest.mark.django_db
MakeVersion = Callable[..., ModelVersion]


def log_predictions(version: ModelVersion, *, days: int, shift: float, repeats: int = 1) -> None:
    """`repeats` logged predictions per symbol and day (the same bar asked about again), with
    features N(shift, 1) that change between repeats (the last one is the one that counts)."""
    rng = np.random.default_rng(5)
    PredictionLog.objects.bulk_create(
        PredictionLog(
            model_version=version,
            symbol=symbol,
            as_of=FIRST_DAY + timedelta(days=day),
            features=list(rng.normal(shift if r == repeats - 1 else -50.0, 1.0, len(FEATURES))),
            probability=0.5,
            signal="long",
            stale=False,
            latency_ms=1.0,
        )
        for day in range(days)
        for symbol in SYMBOLS
        for r in range(repeats)
    )


def test_enough_logged_predictions_make_the_window_deduplicated_per_symbol_and_bar(
    make_version: MakeVersion, settings: pytest.FixtureRequest
) -> None:
    settings.DRIFT_MIN_PREDICTION_ROWS = 100
    version = make_version(shift=0.0)  # the materialized rows are unchanged...
    log_predictions(version, days=60, shift=3.0, repeats=3)  # ...what was served is not
    window = current_window(version)
    assert window.source == "predictions"
    assert window.n_rows == 2 * 60  # 360 log rows, 120 distinct (symbol, bar)
    assert window.series == sorted(window.series)  # by symbol, then time
    assert np.all(window.matrix > -10)  # the earlier repeats (at -50) were replaced
    report = drift_scan_version(version).report
    assert report is not None and report.source == "predictions" and report.severity == "HIGH"


def test_too_few_logged_predictions_fall_back_to_the_materialized_features(
    make_version: MakeVersion, settings: pytest.FixtureRequest
) -> None:
    settings.DRIFT_MIN_PREDICTION_ROWS = 100
    version = make_version(shift=0.0)
    log_predictions(version, days=40, shift=3.0)  # 80 distinct rows < 100
    window = current_window(version)
    assert window.source == "features" and window.n_rows == 2 * 60


def test_the_prediction_window_spans_the_last_window_bars(
    make_version: MakeVersion, settings: pytest.FixtureRequest
) -> None:
    settings.DRIFT_MIN_PREDICTION_ROWS = 10
    settings.DRIFT_WINDOW_BARS = 20
    version = make_version(shift=0.0)
    log_predictions(version, days=60, shift=0.0)
    window = current_window(version)
    assert window.source == "predictions"
    assert window.n_rows == 2 * 20
    assert window.end == FIRST_DAY + timedelta(days=59)
    assert window.start == FIRST_DAY + timedelta(days=40)
