"""Reference statistics of training features for drift monitoring (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from experiments.training.common import REFERENCE_SCHEMA_VERSION, check_int

# --- reference statistics for drift monitoring ----------------------------------------------


def reference_statistics(
    frame: pd.DataFrame,
    feature_names: Sequence[str],
    predictions: np.ndarray | Sequence[float] | None = None,
    *,
    bins: int = 10,
    sample_size: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """The reference a drift monitor compares current data with, computed once per model version.

    JSON-ready (plain ints, floats, lists; NaN and ±inf never appear: a missing number is None)::

        {"schema_version": 1, "n_rows": int, "bins": int, "sample_size": int, "seed": int,
         "quantile_levels": [0.0, 0.1, ..., 1.0],            # numpy.linspace(0, 1, bins + 1)
         "feature_names": [...],
         "features": {name: COLUMN, ...},
         "prediction": COLUMN | None}                        # the predicted P(up), if given
        COLUMN = {
         "summary": {"count", "null_share", "mean", "std", "min", "p01", "p50", "p99", "max"},
         "quantiles": [...],    # numpy.quantile(values, quantile_levels), method "linear"
         "edges": [...],        # interior cut points: sorted unique quantiles[1:-1]
         "counts": [...],       # len(edges) + 1 bins, see below; they sum to summary.count
         "proportions": [...],  # counts / count (None when count is 0)
         "sample": [...]}       # ≤ sample_size values, see below

    Values are the finite ones: NaN and ±inf count as missing (null_share = missing / n_rows),
    every statistic is of the rest. std has ddof=1 (None below two values); p01/p50/p99 are
    numpy.quantile at 0.01/0.5/0.99.
    Bins: the outer edges are −inf and +inf, which JSON cannot hold, so `edges` stores only the
    interior ones and the bins are (−inf, e0), [e0, e1), ..., [e_last, +inf): bin of x =
    numpy.searchsorted(edges, x, side="right") — use `histogram_counts(values, edges)` on current
    data. Ties collapse duplicate quantiles, so a column can have fewer than `bins` bins.
    Sample: all finite values when there are at most `sample_size`, else `sample_size` of them
    drawn without replacement by numpy.random.default_rng(seed), kept in row order. Each column
    draws with a fresh generator, so columns with the same missing rows sample the same rows.
    """
    check_int("bins", bins, minimum=1)
    check_int("sample_size", sample_size, minimum=0)
    names = list(feature_names)
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks feature column(s): {', '.join(missing)}")
    if predictions is not None and len(predictions) != len(frame):
        raise ValueError(f"{len(predictions)} predictions for {len(frame)} rows")
    levels = np.linspace(0.0, 1.0, bins + 1)

    def column(values: np.ndarray) -> dict[str, Any]:
        return _column_reference(values, levels, sample_size, seed)

    return {
        "schema_version": REFERENCE_SCHEMA_VERSION,
        "n_rows": len(frame),
        "bins": bins,
        "sample_size": sample_size,
        "seed": seed,
        "quantile_levels": _json_floats(levels),
        "feature_names": names,
        "features": {name: column(frame[name].to_numpy(dtype=float)) for name in names},
        "prediction": None if predictions is None else column(np.asarray(predictions, dtype=float)),
    }


def histogram_counts(values: np.ndarray | Sequence[float], edges: Sequence[float]) -> np.ndarray:
    """Counts of the finite `values` in the bins of reference `edges` (see reference_statistics):
    len(edges) + 1 bins, the first and last open towards −inf and +inf."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    cuts = np.asarray(edges, dtype=float)
    return np.bincount(np.searchsorted(cuts, x, side="right"), minlength=len(cuts) + 1)


def _column_reference(
    values: np.ndarray, levels: np.ndarray, sample_size: int, seed: int
) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    n = len(finite)
    quantiles = np.quantile(finite, levels) if n else np.full(len(levels), np.nan)
    edges = np.unique(quantiles[1:-1]) if n else np.array([])
    counts = histogram_counts(finite, edges)
    if n > sample_size:
        chosen = np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False))
        sample = finite[chosen]
    else:
        sample = finite
    return {
        "summary": _summary(finite, len(values)),
        "quantiles": _json_floats(quantiles),
        "edges": _json_floats(edges),
        "counts": [int(c) for c in counts],
        "proportions": _json_floats(counts / n if n else np.full(len(counts), np.nan)),
        "sample": _json_floats(sample),
    }


def _summary(finite: np.ndarray, n_rows: int) -> dict[str, Any]:
    n = len(finite)
    p01, p50, p99 = np.quantile(finite, [0.01, 0.5, 0.99]) if n else (np.nan,) * 3
    stats = {
        "null_share": (n_rows - n) / n_rows if n_rows else math.nan,
        "mean": np.mean(finite) if n else math.nan,
        "std": np.std(finite, ddof=1) if n > 1 else math.nan,
        "min": np.min(finite) if n else math.nan,
        "p01": p01,
        "p50": p50,
        "p99": p99,
        "max": np.max(finite) if n else math.nan,
    }
    return {"count": n, **{key: _json_float(value) for key, value in stats.items()}}


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _json_floats(values: np.ndarray) -> list[float | None]:
    return [_json_float(v) for v in values.tolist()]
