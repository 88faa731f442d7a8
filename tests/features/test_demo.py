"""features.demo: deterministic, well-formed bars with a late regime change. Pure: no database."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.demo import DEMO_SYMBOLS, LATE_FRACTION, demo_bars
from features.market import validate_bars


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return demo_bars()


def test_the_same_seed_gives_the_same_frame(bars: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(bars, demo_bars())
    assert not demo_bars(seed=8)["close"].equals(bars["close"])


def test_every_symbol_gets_the_asked_number_of_bars(bars: pd.DataFrame) -> None:
    assert bars.groupby("symbol").size().to_dict() == dict.fromkeys(DEMO_SYMBOLS, 1500)
    assert bars.groupby("symbol")["ts"].is_monotonic_increasing.all()


def test_ohlc_invariants_hold_and_the_bars_pass_validation(bars: pd.DataFrame) -> None:
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["low"] > 0).all()
    assert (bars["volume"] >= 0).all()
    assert len(validate_bars(bars)) == len(bars)


def test_volume_rises_with_the_size_of_the_move(bars: pd.DataFrame) -> None:
    for _, series in bars.groupby("symbol"):
        move = np.log(series["close"]).diff().abs()
        assert move.corr(series["volume"]) > 0.3


def test_returns_are_clearly_more_volatile_after_the_late_regime_change(
    bars: pd.DataFrame,
) -> None:
    for symbol, series in bars.groupby("symbol"):
        returns = np.log(series["close"]).diff().dropna().to_numpy()
        split = len(returns) - int(LATE_FRACTION * len(series))
        ratio = returns[split:].std() / returns[:split].std()
        assert ratio > 1.3, symbol


def test_intraday_bars_are_spaced_by_the_timeframe() -> None:
    bars = demo_bars(symbols=("SPY",), n_bars=12, timeframe="5m")
    assert set(bars["ts"].diff().dropna()) == {pd.Timedelta(minutes=5)}
