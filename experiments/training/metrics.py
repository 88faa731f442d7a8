"""Classification and trading metrics of a signal (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from experiments.training.common import factorize

# --- metrics --------------------------------------------------------------------------------


def positions_from_proba(
    proba: np.ndarray | Sequence[float], *, long_only: bool = False
) -> np.ndarray:
    """+1 where P(up) > 0.5, -1 where P(up) < 0.5 (0 when long_only), 0 at 0.5 or NaN."""
    p = np.asarray(proba, dtype=float)
    short = 0.0 if long_only else -1.0
    return np.where(p > 0.5, 1.0, np.where(p < 0.5, short, 0.0))


def classification_metrics(
    labels: np.ndarray | Sequence[int], proba: np.ndarray | Sequence[float]
) -> dict[str, float]:
    """accuracy (class 1 iff P(up) > 0.5), ROC AUC (NaN when only one class is present) and log
    loss, each as scikit-learn computes them; NaN for no rows."""
    y = np.asarray(labels, dtype=int)
    p = np.asarray(proba, dtype=float)
    if len(y) == 0:
        return {"accuracy": math.nan, "roc_auc": math.nan, "log_loss": math.nan}
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float(accuracy_score(y, (p > 0.5).astype(int))),
        "roc_auc": float(roc_auc_score(y, p)) if both else math.nan,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
    }


def trading_metrics(
    signal_positions: np.ndarray | Sequence[float],
    fwd_returns: np.ndarray | Sequence[float],
    ts: Sequence[Any] | np.ndarray | pd.Series | pd.Index,
    *,
    symbols: Sequence[Any] | np.ndarray | pd.Series | None = None,
    periods_per_year: float = 252.0,
) -> dict[str, float]:
    """Trading metrics of a signal: one row per (symbol, bar), in any order.

    - strategy return per row r = position × fwd_return; per timestamp R_t = mean of r over the
      rows (symbols) of that timestamp, flat ones included (equal weight, idle capital);
    - sharpe = mean(R) / std(R, ddof=1) × √periods_per_year; NaN when undefined (fewer than two
      timestamps, or R constant);
    - max_drawdown = min over t of E_t / max(1, E_1..E_t) − 1 with equity E_t = Π(1 + R_s),
      starting from 1: a NEGATIVE fraction (−0.25 is a 25% peak-to-trough loss), 0.0 if none;
    - hit_rate = share of rows with a nonzero position whose r > 0 (a zero return is a miss);
      NaN when there is no position at all;
    - turnover = Σ|position change| / rows, per symbol in time order, the first row counting its
      entry from flat; so turnover × cost per unit traded is the cost drag per symbol-bar;
    - total_return = E_last − 1, n_periods = number of timestamps.
    `symbols=None` means one instrument (then `ts` must be unique). Inputs must be finite.
    """
    pos = np.asarray(signal_positions, dtype=float)
    ret = np.asarray(fwd_returns, dtype=float)
    ts_codes, _ = factorize(ts, "ts")
    sym_codes = (
        np.zeros(len(pos), dtype=np.intp) if symbols is None else factorize(symbols, "symbols")[0]
    )
    if not len(pos) == len(ret) == len(ts_codes) == len(sym_codes):
        raise ValueError("positions, returns, ts and symbols must have the same length")
    if not (np.isfinite(pos).all() and np.isfinite(ret).all()):
        raise ValueError("positions and returns must be finite")
    order = np.lexsort((ts_codes, sym_codes))
    if ((np.diff(sym_codes[order]) == 0) & (np.diff(ts_codes[order]) == 0)).any():
        raise ValueError("two rows share one (symbol, ts): pass symbols for a multi-symbol signal")
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
    period = np.bincount(ts_codes, weights=pos * ret) / np.bincount(ts_codes)
    return {
        "sharpe": _sharpe(period, periods_per_year),
        "max_drawdown": _max_drawdown(period),
        "hit_rate": _hit_rate(pos, ret),
        "turnover": _turnover(pos[order], sym_codes[order]),
        "total_return": float(np.prod(1.0 + period) - 1.0),
        "n_periods": float(len(period)),
    }


def _sharpe(period: np.ndarray, periods_per_year: float) -> float:
    if len(period) < 2:
        return math.nan
    mean, std = float(np.mean(period)), float(np.std(period, ddof=1))
    # A constant series can show a std of ~1e-18 from rounding alone: treat it as zero.
    if not std > 1e-12 * abs(mean):
        return math.nan
    return mean / std * math.sqrt(periods_per_year)


def _hit_rate(pos: np.ndarray, ret: np.ndarray) -> float:
    held = pos != 0
    return float(np.mean(pos[held] * ret[held] > 0)) if held.any() else math.nan


def _max_drawdown(period: np.ndarray) -> float:
    equity = np.cumprod(1.0 + period)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return float(min(0.0, np.min(equity / peak - 1.0)))


def _turnover(pos: np.ndarray, sym_codes: np.ndarray) -> float:
    """`pos` sorted by (symbol, ts); the first row of each symbol changes from flat."""
    previous = np.concatenate([[0.0], pos[:-1]])
    previous[np.concatenate([[True], np.diff(sym_codes) != 0])] = 0.0
    return float(np.mean(np.abs(pos - previous)))
