"""features.market: bar validation and CSV layouts. Pure: no database."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.market import BarValidationError, read_ohlcv_csv, validate_bars

GOOD_BAR = {
    "ts": "2024-01-02",
    "open": 10.0,
    "high": 11.0,
    "low": 9.5,
    "close": 10.5,
    "volume": 100,
}


def _bars(third: dict[str, Any]) -> pd.DataFrame:
    """Two good bars, then a third that differs from a good one by `third`."""
    rows = [GOOD_BAR, {**GOOD_BAR, "ts": "2024-01-03"}, {**GOOD_BAR, "ts": "2024-01-04", **third}]
    return pd.DataFrame(rows)


def _csv(text: str) -> pd.DataFrame:
    return read_ohlcv_csv(io.StringIO(text))


def test_a_good_frame_comes_back_typed_in_utc() -> None:
    bars = validate_bars(_bars({"ts": "2024-01-04T09:30:00-05:00", "open": "10.25"}))
    assert list(bars.columns) == ["ts", "open", "high", "low", "close", "volume"]
    assert str(bars["ts"].dt.tz) == "UTC"
    assert bars["ts"].iloc[2] == pd.Timestamp("2024-01-04 14:30", tz="UTC")
    assert bars["open"].dtype == np.float64
    assert bars["open"].iloc[2] == 10.25


def test_naive_timestamps_are_taken_as_utc() -> None:
    bars = validate_bars(_bars({"ts": "2024-01-04 16:00:00"}))
    assert bars["ts"].iloc[2] == pd.Timestamp("2024-01-04 16:00", tz="UTC")


def test_column_names_are_case_insensitive() -> None:
    frame = _bars({}).rename(columns=str.upper)
    assert list(validate_bars(frame).columns) == ["ts", "open", "high", "low", "close", "volume"]


def test_a_payload_symbol_fills_bars_without_one() -> None:
    bars = validate_bars(_bars({}), symbol="AAPL")
    assert set(bars["symbol"]) == {"AAPL"}


@pytest.mark.parametrize(
    ("third", "message"),
    [
        ({"high": 9.0}, "high < low"),
        ({"high": 10.2}, "high < max(open, close)"),
        ({"low": 10.2}, "low > min(open, close)"),
        ({"volume": -1}, "negative volume"),
        ({"close": "inf"}, "close is not a finite number"),
        ({"open": "abc"}, "open is not a finite number"),
        ({"open": True}, "open is not a finite number"),
        ({"low": None}, "low is missing"),
        ({"ts": "2024-13-45"}, "is not an ISO 8601 date/time"),
        ({"ts": "yesterday"}, "is not an ISO 8601 date/time"),
        ({"ts": 1_704_326_400}, "is not an ISO 8601 date/time"),
        ({"ts": None}, "ts is missing"),
        ({"ts": "2024-01-02"}, "duplicate ts 2024-01-02T00:00:00+00:00 (first at row 1)"),
        ({"dividend": 0.1}, "unknown column 'dividend'"),
    ],
)
def test_each_bad_row_is_refused_with_its_row_number(third: dict[str, Any], message: str) -> None:
    with pytest.raises(BarValidationError) as caught:
        validate_bars(_bars(third))
    assert caught.value.row == 3
    assert str(caught.value).startswith("row 3: ")
    assert message in str(caught.value)


def test_non_finite_numbers_in_a_numeric_frame_are_refused() -> None:
    frame = _bars({}).astype({"close": float})
    frame.loc[1, "close"] = np.inf
    with pytest.raises(BarValidationError, match=r"^row 2: close is not a finite number"):
        validate_bars(frame)


def test_the_first_bad_row_is_the_one_reported() -> None:
    frame = _bars({"volume": -5})
    frame.loc[1, "high"] = 1.0
    with pytest.raises(BarValidationError, match=r"^row 2: high < low$"):
        validate_bars(frame)


def test_the_same_ts_for_two_symbols_is_not_a_duplicate() -> None:
    frame = pd.DataFrame([{**GOOD_BAR, "symbol": "AAPL"}, {**GOOD_BAR, "symbol": "MSFT"}])
    assert len(validate_bars(frame)) == 2


def test_a_bar_naming_another_symbol_than_the_payload_is_refused() -> None:
    with pytest.raises(BarValidationError, match=r"^row 3: symbol 'MSFT' differs"):
        validate_bars(_bars({"symbol": "MSFT"}), symbol="AAPL")


def test_a_missing_column_and_an_empty_frame_are_refused() -> None:
    with pytest.raises(BarValidationError, match="missing column\\(s\\): volume") as caught:
        validate_bars(_bars({}).drop(columns="volume"))
    assert caught.value.row is None
    with pytest.raises(BarValidationError, match="no bars"):
        validate_bars(_bars({}).iloc[:0])


def test_a_csv_with_a_date_column_is_read() -> None:
    bars = _csv("Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9.5,10.5,100\n")
    assert bars.iloc[0].to_dict() == {
        "ts": pd.Timestamp("2024-01-02", tz="UTC"),
        "open": 10.0,
        "high": 11.0,
        "low": 9.5,
        "close": 10.5,
        "volume": 100.0,
    }


def test_a_csv_with_an_unnamed_index_column_is_read() -> None:
    bars = _csv(",Open,High,Low,Close,Volume\n2024-01-02,10,11,9.5,10.5,100\n")
    assert bars["ts"].tolist() == [pd.Timestamp("2024-01-02", tz="UTC")]


def test_a_written_row_counter_before_a_date_column_is_dropped() -> None:
    bars = _csv(",Date,Open,High,Low,Close,Volume\n0,2024-01-02,10,11,9.5,10.5,100\n")
    assert bars["ts"].tolist() == [pd.Timestamp("2024-01-02", tz="UTC")]


def test_an_intraday_csv_with_offsets_is_read_in_utc() -> None:
    bars = _csv(
        "Datetime,Open,High,Low,Close,Volume\n"
        "2024-01-02 09:35:00-05:00,10,11,9.5,10.5,100\n"
        "2024-01-02 09:40:00-05:00,10.5,11,10,10.8,120\n"
    )
    assert bars["ts"].tolist() == [
        pd.Timestamp("2024-01-02 14:35", tz="UTC"),
        pd.Timestamp("2024-01-02 14:40", tz="UTC"),
    ]


def test_adj_close_is_ignored_and_the_traded_close_kept() -> None:
    bars = _csv("Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,10,11,9.5,10.5,5.25,100\n")
    assert "adj close" not in bars
    assert bars["close"].tolist() == [10.5]


def test_lower_case_names_and_a_timestamp_column_are_read() -> None:
    bars = _csv("timestamp,open,high,low,close,volume\n2024-01-02T00:00:00Z,10,11,9.5,10.5,100\n")
    assert len(bars) == 1


def test_separate_date_and_time_columns_are_joined() -> None:
    bars = _csv("Date,Time,Open,High,Low,Close,Volume\n2024-01-02,09:30,10,11,9.5,10.5,100\n")
    assert bars["ts"].tolist() == [pd.Timestamp("2024-01-02 09:30", tz="UTC")]


def test_a_bad_csv_row_is_named_by_its_data_row() -> None:
    text = (
        "Date,Open,High,Low,Close,Volume\n"
        "2024-01-02,10,11,9.5,10.5,100\n"
        "2024-01-03,10,11,9.5,10.5,\n"
    )
    with pytest.raises(BarValidationError, match=r"^row 2: volume is missing$"):
        _csv(text)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(BarValidationError, match="not a readable CSV"):
        _csv("")
