"""Market bars as pandas frames: validation and CSV reading. Pure: pandas/numpy, no Django.

A valid bar frame has the columns `ts` (bar close time, tz-aware UTC), `open`, `high`, `low`,
`close`, `volume` (float64) and, optionally, `symbol`. Timestamps must be ISO 8601 ("2024-01-02",
"2024-01-02 09:30:00", "2024-01-02T14:30:00Z", "...-05:00"); naive ones are taken as UTC. Other
layouts such as "01/02/2024" are refused rather than guessed, because day and month are ambiguous.

Errors name a 1-based row: the n-th bar of a payload, or the n-th data line after a CSV header.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from features.constants import SYMBOL_MAX_LENGTH, TIMEFRAME_PATTERN

PRICE_COLUMNS = ("open", "high", "low", "close")
NUMBER_COLUMNS = (*PRICE_COLUMNS, "volume")
REQUIRED_COLUMNS = ("ts", *NUMBER_COLUMNS)
BAR_COLUMNS = ("symbol", *REQUIRED_COLUMNS)
# CSV time columns by preference; the first one present becomes `ts`.
CSV_TIME_COLUMNS = ("ts", "timestamp", "datetime", "date", "time")
CSV_ALIASES = {"ticker": "symbol"}
# Adjusted close is dropped: it rescales the close alone, so it would break low <= close <= high.
# We store traded prices; adjustments belong in features, computed from corporate actions.
CSV_IGNORED_COLUMNS = ("adj close",)
UNNAMED = "unnamed: 0"  # how pandas names a CSV column with an empty header (a written index)

Problem = tuple[np.ndarray, Callable[[int], str]]  # rows at fault, message for one of them
_TIMEFRAME_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BarValidationError(ValueError):
    """Bars were refused; `row` is the 1-based row at fault, or None when no row is to blame."""

    def __init__(self, *, row: int | None, message: str) -> None:
        self.row = row
        self.message = message
        super().__init__(message if row is None else f"row {row}: {message}")


def is_timeframe(value: str) -> bool:
    return bool(re.fullmatch(TIMEFRAME_PATTERN, value))


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """The spacing of bars of `timeframe`: "5m" -> 5 minutes, "1d" -> 1 day."""
    if not is_timeframe(timeframe):
        raise ValueError(f"timeframe {timeframe!r} is not a count and a unit (m, h, d, w)")
    return pd.Timedelta(**{_TIMEFRAME_UNITS[timeframe[-1]]: int(timeframe[:-1])})


def validate_bars(frame: pd.DataFrame, *, symbol: str | None = None) -> pd.DataFrame:
    """The bars of `frame`, typed and in input order, or BarValidationError for the first bad row.

    Column names are case-insensitive. With `symbol`, bars without a symbol of their own get it,
    and a bar naming another symbol is refused. A frame with no symbol at all is allowed here
    (the caller decides whether it needs one); duplicates are then checked on `ts` alone.
    """
    raw = _canonical_columns(frame).reset_index(drop=True)
    if raw.empty:
        raise BarValidationError(row=None, message="no bars")
    bars = pd.DataFrame(index=raw.index)
    problems: list[Problem] = []
    if "symbol" in raw or symbol is not None:
        bars["symbol"], found = _symbols(raw, symbol)
        problems += found
    bars["ts"], found = _timestamps(raw["ts"])
    problems += found
    for column in NUMBER_COLUMNS:
        bars[column], found = _numbers(raw[column], column)
        problems += found
    problems += _bar_shape_problems(bars)
    problems += _duplicate_problems(bars)
    _raise_first(problems)
    return bars


def read_ohlcv_csv(path_or_buffer: str | Path | IO[str]) -> pd.DataFrame:
    """Read and validate an OHLCV CSV in a common layout.

    Time comes from a ts/Timestamp/Datetime/Date/Time column (Date + Time are joined), or from an
    unnamed first column (a written pandas index). When a named time column exists, an unnamed
    first column is a row counter and is dropped. Names are case-insensitive ("Open", "CLOSE",
    "adj_close"); "Adj Close" is ignored (see CSV_IGNORED_COLUMNS); "Ticker" means symbol.
    """
    try:
        raw = pd.read_csv(path_or_buffer, dtype=str, skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BarValidationError(row=None, message=f"not a readable CSV file: {exc}") from exc
    return validate_bars(_csv_bar_columns(raw))


def _column_key(name: object) -> str:
    return re.sub(r"[\s_]+", " ", str(name)).strip().lower()


def _canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [_column_key(name) for name in frame.columns]
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise BarValidationError(row=None, message=f"column {key!r} appears twice")
        seen.add(key)
    renamed = frame.set_axis(keys, axis="columns")
    for key in keys:
        if key not in BAR_COLUMNS:
            present = np.flatnonzero(renamed[key].notna().to_numpy())
            row = int(present[0]) + 1 if present.size else None
            message = f"unknown column {key!r} (expected {', '.join(BAR_COLUMNS)})"
            raise BarValidationError(row=row, message=message)
    missing = [column for column in REQUIRED_COLUMNS if column not in seen]
    if missing:
        raise BarValidationError(row=None, message=f"missing column(s): {', '.join(missing)}")
    return renamed


def _csv_bar_columns(raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw.set_axis([_column_key(name) for name in raw.columns], axis="columns")
    frame = frame.drop(columns=[c for c in CSV_IGNORED_COLUMNS if c in frame])
    frame = frame.rename(columns=CSV_ALIASES)
    time_columns = [c for c in CSV_TIME_COLUMNS if c in frame]
    if frame.columns.size and frame.columns[0] == UNNAMED:
        if time_columns:
            frame = frame.drop(columns=UNNAMED)
        else:
            return frame.rename(columns={UNNAMED: "ts"})
    if {"date", "time"} <= set(time_columns) and len(time_columns) == 2:
        ts = frame["date"].str.cat(frame["time"], sep=" ")
        return frame.drop(columns=["date", "time"]).assign(ts=ts)
    if time_columns and time_columns[0] != "ts":
        return frame.rename(columns={time_columns[0]: "ts"})
    return frame


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _symbols(raw: pd.DataFrame, symbol: str | None) -> tuple[pd.Series, list[Problem]]:
    if symbol is not None and not 0 < len(symbol.strip()) <= SYMBOL_MAX_LENGTH:
        message = f"symbol {symbol!r} must have 1 to {SYMBOL_MAX_LENGTH} characters"
        raise BarValidationError(row=None, message=message)
    given = symbol.strip() if symbol is not None else ""
    if "symbol" not in raw:
        return pd.Series(given, index=raw.index, dtype=object), []
    own = raw["symbol"].map(
        lambda v: str(v).strip() if isinstance(v, str | int) and not isinstance(v, bool) else ""
    )
    symbols = own.where(own != "", given) if given else own
    too_long = symbols.str.len().to_numpy() > SYMBOL_MAX_LENGTH
    problems: list[Problem] = [
        ((symbols == "").to_numpy(), lambda i: "symbol is missing"),
        (too_long, lambda i: f"symbol is longer than {SYMBOL_MAX_LENGTH} characters"),
    ]
    if given:
        other = ((own != "") & (own != given)).to_numpy()
        problems.append(
            (other, lambda i: f"symbol {own[i]!r} differs from the payload's {given!r}")
        )
    return symbols.astype(object), problems


def _timestamps(raw: pd.Series) -> tuple[pd.Series, list[Problem]]:
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw, utc=True)
    else:
        # Numbers are refused rather than read as epochs: seconds or milliseconds is a guess.
        usable = raw.map(lambda v: isinstance(v, str | date)).astype(bool)
        parsed = pd.to_datetime(raw.where(usable), utc=True, errors="coerce", format="ISO8601")
    parsed = parsed.dt.as_unit("us")  # the database keeps microseconds
    missing = raw.isna().to_numpy()
    invalid = parsed.isna().to_numpy() & ~missing
    return parsed, [
        (missing, lambda i: "ts is missing"),
        (invalid, lambda i: f"ts {_shown(raw[i])} is not an ISO 8601 date/time"),
    ]


def _numbers(raw: pd.Series, column: str) -> tuple[pd.Series, list[Problem]]:
    if pd.api.types.is_bool_dtype(raw):
        values = pd.Series(np.nan, index=raw.index)
    elif pd.api.types.is_numeric_dtype(raw):
        values = raw.astype("float64")
    else:
        flags = raw.map(lambda v: isinstance(v, bool)).astype(bool)  # JSON true is not 1.0
        values = pd.to_numeric(raw.mask(flags), errors="coerce").astype("float64")
    missing = raw.isna().to_numpy()
    not_finite = ~np.isfinite(values.to_numpy()) & ~missing
    return values, [
        (missing, lambda i: f"{column} is missing"),
        (not_finite, lambda i: f"{column} is not a finite number (got {_shown(raw[i])})"),
    ]


def _bar_shape_problems(bars: pd.DataFrame) -> list[Problem]:
    body_high = np.maximum(bars["open"], bars["close"])
    body_low = np.minimum(bars["open"], bars["close"])
    return [
        ((bars["high"] < bars["low"]).to_numpy(), lambda i: "high < low"),
        ((bars["high"] < body_high).to_numpy(), lambda i: "high < max(open, close)"),
        ((bars["low"] > body_low).to_numpy(), lambda i: "low > min(open, close)"),
        ((bars["volume"] < 0).to_numpy(), lambda i: "negative volume"),
    ]


def _duplicate_problems(bars: pd.DataFrame) -> list[Problem]:
    keys = ["symbol", "ts"] if "symbol" in bars else ["ts"]
    repeated = (bars.duplicated(subset=keys, keep="first") & bars["ts"].notna()).to_numpy()

    def describe(i: int) -> str:
        same = (bars[keys] == bars.loc[i, keys]).all(axis="columns").to_numpy()
        first = int(np.flatnonzero(same)[0]) + 1
        owner = f" for {bars.loc[i, 'symbol']}" if "symbol" in bars else ""
        return f"duplicate ts {bars.loc[i, 'ts'].isoformat()}{owner} (first at row {first})"

    return [(repeated, describe)]


def _raise_first(problems: list[Problem]) -> None:
    """Raise for the lowest bad row; on a tie, the problem listed first wins."""
    worst: tuple[int, Callable[[int], str]] | None = None
    for rows, describe in problems:
        hits = np.flatnonzero(rows)
        if hits.size and (worst is None or hits[0] < worst[0]):
            worst = (int(hits[0]), describe)
    if worst is not None:
        raise BarValidationError(row=worst[0] + 1, message=worst[1](worst[0]))
