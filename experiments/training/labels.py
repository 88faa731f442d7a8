"""Labels and walk-forward folds (pure): see `experiments.training` for the conventions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from experiments.training.common import FWD_RETURN, LABEL, check_int, factorize

# --- labels and folds -----------------------------------------------------------------------


def next_bar_labels(bars: pd.DataFrame) -> pd.DataFrame:
    """Entity rows (symbol, ts, label, fwd_return) for next-bar direction, sorted by (ts, symbol).

    Per symbol, `ts` is the bar's close time, fwd_return = next close / close − 1 and label = 1 if
    the next close is strictly higher, else 0 (an unchanged close is 0). "Next" is the symbol's
    next row in `bars`, whatever the gap. The last bar of each symbol (no next bar) and bars whose
    return is not finite (missing or zero close) are dropped. Nothing but the next close is read.
    """
    missing = [c for c in ("symbol", "ts", "close") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack required column(s): {', '.join(missing)}")
    if not isinstance(bars["ts"].dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"bars.ts must be a timezone-aware datetime column, got {bars['ts'].dtype}"
        )
    frame = pd.DataFrame(
        {
            "symbol": bars["symbol"].array,
            "ts": bars["ts"].dt.tz_convert("UTC").array,
            "close": bars["close"].to_numpy(dtype=float),
        }
    ).sort_values(["symbol", "ts"], kind="stable")
    if frame.duplicated(["symbol", "ts"]).any():
        row = frame[frame.duplicated(["symbol", "ts"])].iloc[0]
        raise ValueError(f"duplicate bar for symbol {row['symbol']!r} at {row['ts'].isoformat()}")
    next_close = frame.groupby("symbol", sort=False)["close"].shift(-1)
    frame[FWD_RETURN] = next_close / frame["close"] - 1.0
    frame[LABEL] = (next_close > frame["close"]).astype("int64")
    frame = frame[np.isfinite(frame[FWD_RETURN].to_numpy())]
    frame = frame.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
    return frame[["symbol", "ts", LABEL, FWD_RETURN]]


def walk_forward_splits(
    ts: Sequence[Any] | np.ndarray | pd.Series | pd.Index,
    n_folds: int,
    min_train: int | float,
    gap: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over the unique timestamps: [(train positions, test positions)].

    The unique timestamps are sorted; the first `min_train` of them (an int count, or a float
    fraction in (0, 1), rounded down) only ever train. The rest are cut into `n_folds`
    contiguous, non-overlapping test windows of near-equal size (numpy.array_split) that cover
    them all. Fold k trains on every timestamp before its test window except the last `gap`
    (an embargo in bars). Every row of a timestamp, whatever its symbol, lands in the same
    window. Positions index `ts` as given (it need not be sorted) and are ascending.

    With a one-bar label, gap=0 leaks nothing: the newest training label is realized at the
    first test bar's close, when the first test prediction is made.
    """
    check_int("n_folds", n_folds, minimum=1)
    check_int("gap", gap, minimum=0)
    codes, uniques = factorize(ts, "ts")
    n_unique = len(uniques)
    n_train = _min_train_count(min_train, n_unique)
    if n_unique - n_train < n_folds:
        raise ValueError(
            f"{n_unique} unique timestamps leave {n_unique - n_train} after min_train={min_train}:"
            f" fewer than n_folds={n_folds} test windows of at least one timestamp"
        )
    if n_train - gap < 1:
        raise ValueError(f"gap={gap} leaves no training timestamps before the first test window")
    windows = np.array_split(np.arange(n_train, n_unique), n_folds)
    return [
        (
            np.flatnonzero(codes < window[0] - gap),
            np.flatnonzero((codes >= window[0]) & (codes <= window[-1])),
        )
        for window in windows
    ]


def _min_train_count(min_train: int | float, n_unique: int) -> int:
    if isinstance(min_train, bool):
        raise ValueError(f"min_train must be an int >= 1 or a float in (0, 1), got {min_train!r}")
    if isinstance(min_train, int | np.integer):
        if min_train < 1:
            raise ValueError(f"min_train must be >= 1 timestamp, got {min_train}")
        return int(min_train)
    if isinstance(min_train, float | np.floating) and 0.0 < min_train < 1.0:
        return max(1, math.floor(min_train * n_unique))
    raise ValueError(f"min_train must be an int >= 1 or a float in (0, 1), got {min_train!r}")
