"""Reference statistics of training features for drift monitoring (pure numpy/pandas, no
Django): computed once when a model is trained, stored with its registered version, read by every
drift scan (drift.statistics), which never re-reads the training data.

Market features are autocorrelated: a 20-bar return moves little from one bar to the next, so 60
consecutive bars of it carry the information of two or three independent draws, not 60. A test
that counts them as 60 calls ordinary wandering "drift". Each column therefore also stores its
integrated autocorrelation time τ (`autocorrelation_time`), from which a scan derives effective
sample sizes (n / τ) for its p-values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# 2: columns carry "autocorrelation_time" (None when no series were given). 1 is still read.
REFERENCE_SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
MIN_SERIES_LENGTH = 8  # shorter runs of finite values say nothing about autocorrelation
MAX_AUTOCORRELATION_LAG = 1000


def check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# --- reference statistics for drift monitoring ----------------------------------------------


def reference_statistics(
    frame: pd.DataFrame,
    feature_names: Sequence[str],
    predictions: np.ndarray | Sequence[float] | None = None,
    *,
    series: np.ndarray | Sequence[Any] | None = None,
    bins: int = 10,
    sample_size: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """The reference a drift monitor compares current data with, computed once per model version.

    JSON-ready (plain ints, floats, lists; NaN and ±inf never appear: a missing number is None)::

        {"schema_version": 2, "n_rows": int, "bins": int, "sample_size": int, "seed": int,
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
         "sample": [...],       # ≤ sample_size values, see below
         "autocorrelation_time": float | None}  # τ ≥ 1, see autocorrelation_time()

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
    Series: the id of each row's series (the symbol), rows in time order within each series;
    given, each column's τ is estimated over them (None otherwise: scans then treat rows as
    independent, or estimate τ from their own window).
    """
    check_int("bins", bins, minimum=1)
    check_int("sample_size", sample_size, minimum=0)
    names = list(feature_names)
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks feature column(s): {', '.join(missing)}")
    if predictions is not None and len(predictions) != len(frame):
        raise ValueError(f"{len(predictions)} predictions for {len(frame)} rows")
    if series is not None and len(series) != len(frame):
        raise ValueError(f"{len(series)} series ids for {len(frame)} rows")
    levels = np.linspace(0.0, 1.0, bins + 1)

    def column(values: np.ndarray) -> dict[str, Any]:
        tau = None if series is None else autocorrelation_time(values, series)
        return {**_column_reference(values, levels, sample_size, seed),
                "autocorrelation_time": tau}  # fmt: skip

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


def autocorrelation_time(
    values: np.ndarray | Sequence[float],
    series: np.ndarray | Sequence[Any],
    *,
    max_lag: int = MAX_AUTOCORRELATION_LAG,
) -> float:
    """Integrated autocorrelation time τ = 1 + 2 Σ_k ρ_k of `values`, pooled over `series`.

    Rows are in time order within each series (e.g. one symbol's bars); NaN/±inf are dropped
    (the finite values of a series are taken as consecutive). Each series is centred on its own
    mean; the autocovariances of all series are summed lag by lag (series shorter than
    MIN_SERIES_LENGTH are skipped) and normalised by the lag-0 sum, giving one ρ_k. The sum is
    truncated by Geyer's initial positive sequence (stop at the first pair ρ_2m + ρ_2m+1 ≤ 0),
    over lags up to min(max_lag, longest series / 4). The result is at least 1 (independent
    rows), and 1 when nothing can be estimated. n rows then weigh as n / τ independent ones.
    """
    x = np.asarray(values, dtype=float)
    ids = pd.factorize(pd.Series(np.asarray(series, dtype=object)))[0]
    if len(ids) != len(x):
        raise ValueError(f"{len(ids)} series ids for {len(x)} values")
    keep = np.isfinite(x)
    x, ids = x[keep], ids[keep]
    order = np.argsort(ids, kind="stable")
    x, ids = x[order], ids[order]
    bounds = np.flatnonzero(np.diff(ids)) + 1
    chunks = [c - c.mean() for c in np.split(x, bounds) if len(c) >= MIN_SERIES_LENGTH]
    if not chunks:
        return 1.0
    lags = min(max_lag, max(len(c) for c in chunks) // 4)
    if lags < 2:
        return 1.0
    acov = np.zeros(lags + 1)
    for chunk in chunks:
        size = 1 << int(math.ceil(math.log2(2 * len(chunk))))
        spectrum = np.fft.rfft(chunk, size)
        own = np.fft.irfft(spectrum * np.conj(spectrum), size)[: min(lags + 1, len(chunk))]
        acov[: len(own)] += own
    if not acov[0] > 0:
        return 1.0
    rho = acov / acov[0]
    pairs = rho[0 : 2 * (len(rho) // 2) : 2] + rho[1 : 2 * (len(rho) // 2) : 2]
    positive = np.flatnonzero(pairs <= 0)
    used = pairs[: positive[0]] if len(positive) else pairs
    return max(1.0, float(-1.0 + 2.0 * used.sum()))


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
