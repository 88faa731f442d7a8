"""Bars as a sorted numpy panel, with per-symbol shift, rolling and EWM primitives.

All symbols live in one set of flat arrays sorted by (symbol, ts); every primitive resets at the
symbol boundaries, so no value is ever computed from another symbol's bars and the work is a
handful of vectorized calls whatever the number of symbols.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer
from pandas.api.typing import Rolling

BAR_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


def utc_timestamps(bars: pd.DataFrame) -> pd.Series:
    """Check the bar columns and return `ts` in UTC; naive timestamps are rejected (instants)."""
    missing = [column for column in BAR_COLUMNS if column not in bars.columns]
    if missing:
        raise ValueError(f"bars lack required column(s): {', '.join(missing)}")
    if bars["symbol"].isna().any():
        raise ValueError("bars.symbol has missing values")
    ts = bars["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"bars.ts must be a timezone-aware datetime column, got {ts.dtype}")
    return ts.dt.tz_convert("UTC")


def sort_order(symbols: np.ndarray, ts_ns: np.ndarray) -> np.ndarray | None:
    """Positions that sort the bars by (symbol, ts), or None when they are already sorted.

    Raises ValueError on two bars with the same (symbol, ts): features would be ambiguous.
    """
    if len(symbols) < 2:
        return None
    same_symbol = symbols[1:] == symbols[:-1]
    ts_step = np.diff(ts_ns)
    if np.all(symbols[1:] >= symbols[:-1]) and np.all(~same_symbol | (ts_step > 0)):
        return None
    codes, _ = pd.factorize(symbols, sort=True)
    order = np.lexsort((ts_ns, codes))
    duplicate = (np.diff(codes[order]) == 0) & (np.diff(ts_ns[order]) == 0)
    if duplicate.any():
        row = order[np.argmax(duplicate)]
        when = pd.Timestamp(ts_ns[row], unit="ns", tz="UTC").isoformat()
        raise ValueError(f"duplicate bar for symbol {symbols[row]!r} at {when}")
    return order


def sort_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Validate `bars` and return them sorted by (symbol, ts) with UTC ts and float64 values.

    The original index is kept, so results can be joined back onto the caller's rows.
    """
    ts = utc_timestamps(bars)
    order = sort_order(bars["symbol"].to_numpy(), ts.to_numpy(dtype="datetime64[ns]").view("i8"))
    result = bars.assign(ts=ts, **{c: bars[c].astype("float64") for c in VALUE_COLUMNS})
    return result if order is None else result.iloc[order]


class _SymbolWindow(BaseIndexer):
    """Trailing window of `window_size` rows, truncated at the first row of the row's symbol.

    With min_periods=window_size a truncated window yields NaN, and pandas restarts its running
    sums whenever a window does not overlap the previous one, i.e. at every symbol boundary.
    """

    def get_window_bounds(
        self,
        num_values: int = 0,
        min_periods: int | None = None,
        center: bool | None = None,
        closed: str | None = None,
        step: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        end = np.arange(1, num_values + 1, dtype=np.int64)
        start = np.maximum(end - self.window_size, self.group_start)
        return start, end


@dataclass
class BarPanel:
    """Bars sorted by (symbol, ts) as float64 columns, plus each row's symbol code and offset."""

    columns: dict[str, np.ndarray]
    codes: np.ndarray  # symbol number per row, non-decreasing
    group_start: np.ndarray  # per row: position of its symbol's first row
    _memo: dict[Hashable, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def from_sorted(cls, bars: pd.DataFrame) -> BarPanel:
        """Build a panel from bars already sorted by `sort_bars` (or known to be sorted)."""
        symbols = bars["symbol"].to_numpy()
        first = np.ones(len(symbols), dtype=bool)
        first[1:] = symbols[1:] != symbols[:-1]
        codes = np.cumsum(first) - 1
        starts = np.flatnonzero(first)
        columns = {c: bars[c].to_numpy(dtype="float64") for c in VALUE_COLUMNS}
        return cls(columns=columns, codes=codes, group_start=starts[codes].astype(np.int64))

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    @property
    def position(self) -> np.ndarray:
        """Row number within the row's symbol: 0 for its first bar."""
        return np.arange(len(self.codes)) - self.group_start

    def memo(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Compute an intermediate once per panel (e.g. EMA-12 shared by three MACD features)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def lag(self, values: np.ndarray, periods: int) -> np.ndarray:
        """values[t − periods] within the same symbol; NaN for a symbol's first `periods` rows."""
        lagged = np.full(len(values), np.nan)
        lagged[periods:] = values[: len(values) - periods]
        lagged[self.position < periods] = np.nan
        return lagged

    def rolling(self, values: np.ndarray, window: int) -> Rolling:
        """A pandas Rolling over `window` bars of one symbol; NaN until the window is full."""
        indexer = _SymbolWindow(window_size=window, group_start=self.group_start)
        return pd.Series(values, copy=False).rolling(indexer, min_periods=window)

    def ewm(self, values: np.ndarray, *, alpha: float, min_periods: int) -> np.ndarray:
        """y_t = (1 − alpha)·y_{t−1} + alpha·x_t per symbol, seeded with its first non-NaN x.

        This is pandas' ewm(adjust=False), the recursion `ta` uses; values are NaN until
        `min_periods` non-NaN inputs have been seen.
        """
        series = pd.Series(values, copy=False)
        if len(values) == 0 or self.codes[-1] == 0:
            # One symbol (the per-symbol materialization path): grouping would only cost ~3x.
            return series.ewm(alpha=alpha, adjust=False, min_periods=min_periods).mean().to_numpy()
        grouped = series.groupby(self.codes, sort=False)
        smoothed = grouped.ewm(alpha=alpha, adjust=False, min_periods=min_periods).mean()
        return smoothed.to_numpy()  # grouped in code order, which is the panel's row order
