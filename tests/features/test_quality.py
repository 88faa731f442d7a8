"""Quality scores: components by hand, and per-symbol counts that add up to the panel's."""

from __future__ import annotations

import numpy as np
import pytest

from features.quality import (
    FeatureCounts,
    feature_counts,
    feature_quality,
    freshness_score,
    quality_from_counts,
    stability_score,
)


def test_components_by_hand() -> None:
    values = np.array([10.0, np.nan, 50.0, 120.0, np.inf, 30.0])  # RSI-like, range [0, 100]
    counts = feature_counts(values, valid_min=0.0, valid_max=100.0)
    assert (counts.rows, counts.finite, counts.inside) == (6, 4, 3)
    quality = feature_quality("rsi", values, valid_min=0.0, valid_max=100.0, freshness=100.0)
    assert quality.completeness == pytest.approx(100 * 4 / 6)
    assert quality.validity == pytest.approx(100 * 3 / 4)


def test_freshness_falls_linearly_after_one_timeframe() -> None:
    day = 86_400
    assert freshness_score(age_seconds=0.5 * day, timeframe_seconds=day) == 100.0
    assert freshness_score(age_seconds=3 * day, timeframe_seconds=day) == pytest.approx(50.0)
    assert freshness_score(age_seconds=9 * day, timeframe_seconds=day) == 0.0


def test_stability_is_the_recent_mean_shift_in_reference_sds() -> None:
    reference = np.tile([-1.0, 1.0], 45)  # mean 0, sd 1
    recent = np.full(10, 1.5)  # 1.5 sd above: 100 * (1 - 1.5 / 3) = 50
    assert stability_score(np.concatenate([reference, recent])) == pytest.approx(50.0)


def test_symbol_counts_add_up_to_the_panel() -> None:
    rng = np.random.default_rng(3)
    a = np.where(rng.random(200) < 0.1, np.nan, rng.normal(50, 20, 200))
    b = np.where(rng.random(100) < 0.3, np.nan, rng.normal(50, 20, 100))
    parts = [feature_counts(x, valid_min=0.0, valid_max=100.0) for x in (a, b)]
    merged = quality_from_counts("f", parts, freshness=80.0)
    both = np.concatenate([a, b])
    finite = np.isfinite(both)
    inside = finite & (np.nan_to_num(both, nan=-1) >= 0) & (np.nan_to_num(both, nan=-1) <= 100)
    assert merged.completeness == pytest.approx(100 * finite.mean())
    assert merged.validity == pytest.approx(100 * inside.sum() / finite.sum())
    weights = [np.isfinite(a).sum(), np.isfinite(b).sum()]
    expected = np.average([stability_score(a), stability_score(b)], weights=weights)
    assert merged.stability == pytest.approx(expected)
    assert merged.freshness == 80.0


def test_one_symbol_scores_as_before_and_no_rows_score_zero() -> None:
    values = np.linspace(0, 1, 50)
    single = feature_quality("f", values, valid_min=None, valid_max=None, freshness=100.0)
    counts = [feature_counts(values, valid_min=None, valid_max=None)]
    assert quality_from_counts("f", counts, freshness=100.0) == single
    empty = quality_from_counts("f", [FeatureCounts(0, 0, 0, 100.0)], freshness=100.0)
    assert (empty.completeness, empty.validity, empty.stability) == (0.0, 0.0, 0.0)
