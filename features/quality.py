"""Feature quality scores, 0-100 (pure numpy/pandas, no Django).

Per feature, four components, each 0-100:
- completeness: share of finite values among the rows past the feature's warm-up;
- validity: share of finite values inside the feature's valid range (100 when it has none);
- freshness: 100 while the newest bar is at most one timeframe old, falling linearly to 0 at
  `STALE_AFTER_TIMEFRAMES` timeframes;
- stability: 100 minus the penalty for a shift of the recent mean, measured in reference standard
  deviations (|mean_recent - mean_reference| / std_reference; 0 sd -> 100, >= 3 sd -> 0).
The feature score is their weighted mean (weights below); the view score is the mean of its
features' scores.

Materialization computes symbols separately (in parallel Celery tasks), so the scores are built
from per-symbol counts that add up (`feature_counts` -> `quality_from_counts`): completeness and
validity from summed counts, stability as the mean of each symbol's own stability (its recent
rows against its own earlier rows) weighted by its finite values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WEIGHTS = {"completeness": 0.35, "validity": 0.3, "freshness": 0.2, "stability": 0.15}
STALE_AFTER_TIMEFRAMES = 5.0
STABILITY_RECENT_SHARE = 0.1  # the newest 10% of rows are compared with the rest
STABILITY_ZERO_AT_SD = 3.0


@dataclass(frozen=True)
class FeatureQuality:
    name: str
    completeness: float
    validity: float
    freshness: float
    stability: float

    @property
    def score(self) -> float:
        return round(sum(getattr(self, part) * w for part, w in WEIGHTS.items()), 2)

    def as_dict(self) -> dict[str, float]:
        parts = {part: round(getattr(self, part), 2) for part in WEIGHTS}
        return {**parts, "score": self.score}


def freshness_score(*, age_seconds: float, timeframe_seconds: float) -> float:
    timeframes_old = max(age_seconds, 0.0) / timeframe_seconds
    if timeframes_old <= 1.0:
        return 100.0
    return float(max(0.0, 100.0 * (1 - (timeframes_old - 1) / (STALE_AFTER_TIMEFRAMES - 1))))


def stability_score(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    split = int(len(finite) * (1 - STABILITY_RECENT_SHARE))
    reference, recent = finite[:split], finite[split:]
    if len(reference) < 2 or len(recent) == 0:
        return 100.0
    spread = float(np.std(reference))
    if spread == 0.0:
        return 100.0 if np.allclose(recent, reference[0]) else 0.0
    shift_sd = abs(float(np.mean(recent)) - float(np.mean(reference))) / spread
    return float(max(0.0, 100.0 * (1 - shift_sd / STABILITY_ZERO_AT_SD)))


@dataclass(frozen=True)
class FeatureCounts:
    """One feature's counts over one symbol's rows; several symbols' counts add up."""

    rows: int
    finite: int
    inside: int
    stability: float

    def as_dict(self) -> dict[str, float]:
        return {
            "rows": self.rows,
            "finite": self.finite,
            "inside": self.inside,
            "stability": self.stability,
        }


def feature_counts(
    values: np.ndarray, *, valid_min: float | None, valid_max: float | None
) -> FeatureCounts:
    """Counts of one feature's values (one symbol, rows past the warm-up, in time order)."""
    finite = np.isfinite(values)
    inside = finite.copy()
    if valid_min is not None:
        inside &= np.where(finite, values, valid_min) >= valid_min
    if valid_max is not None:
        inside &= np.where(finite, values, valid_max) <= valid_max
    return FeatureCounts(
        rows=len(values),
        finite=int(finite.sum()),
        inside=int(inside.sum()),
        stability=stability_score(values) if len(values) else 100.0,
    )


def quality_from_counts(
    name: str, counts: Sequence[FeatureCounts], *, freshness: float
) -> FeatureQuality:
    rows = sum(c.rows for c in counts)
    if rows == 0:
        return FeatureQuality(name, 0.0, 0.0, freshness, 0.0)
    finite = sum(c.finite for c in counts)
    inside = sum(c.inside for c in counts)
    weights = [c.finite for c in counts]
    stability = float(np.average([c.stability for c in counts], weights=weights)) if finite else 0.0
    return FeatureQuality(
        name, 100.0 * finite / rows, 100.0 * inside / max(finite, 1), freshness, stability
    )


def feature_quality(
    name: str,
    values: np.ndarray,
    *,
    valid_min: float | None,
    valid_max: float | None,
    freshness: float,
) -> FeatureQuality:
    """Quality of one feature's values (rows past its warm-up only)."""
    if len(values) == 0:
        return FeatureQuality(name, 0.0, 0.0, freshness, 0.0)
    counts = feature_counts(values, valid_min=valid_min, valid_max=valid_max)
    return quality_from_counts(name, [counts], freshness=freshness)


def view_quality(features: Sequence[FeatureQuality]) -> dict[str, object]:
    score = round(float(np.mean([f.score for f in features])), 2) if features else 0.0
    return {"score": score, "features": {f.name: f.as_dict() for f in features}}
