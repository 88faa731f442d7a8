"""Deterministic demo bars that look like markets. Pure: pandas/numpy, no Django.

Per symbol, log returns follow a two-state Markov chain (calm / volatile) that scales a GARCH(1,1)
variance driven by fat-tailed Student-t shocks, so quiet and stormy stretches alternate and large
moves cluster. Opens sit near the previous close (a small overnight gap), highs and lows envelope
the open-close body, and volume grows with the size of the move.

The late regime change: over the last LATE_FRACTION (15%) of bars, volatility is multiplied by
LATE_VOL_MULTIPLIER, the annual drift drops by LATE_DRIFT_SHIFT_SHARPE calm volatilities (a
bear turn: e.g. SPY's 8% a year becomes 8% - 1.5 x 11% = -8.5%), and volume rises by
LATE_VOLUME_MULTIPLIER. A drift monitor whose reference is the earlier bars therefore sees drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from features.market import timeframe_delta

DEMO_SYMBOLS = ("AAPL", "MSFT", "SPY", "BTCUSD", "EURUSD")
DEMO_END = datetime(2025, 6, 30, 21, 0, tzinfo=UTC)  # daily bars close at 21:00 UTC
LATE_FRACTION = 0.15
LATE_VOL_MULTIPLIER = 2.0
LATE_DRIFT_SHIFT_SHARPE = 1.5
LATE_VOLUME_MULTIPLIER = 1.4
STAY_CALM = 0.97  # per-bar probability that a calm market stays calm (mean stay ~33 bars)
STAY_VOLATILE = 0.90  # ... that a volatile one stays volatile (mean stay ~10 bars)
VOLATILE_MULTIPLIER = 2.0
# Persistence 0.96; alpha is kept small enough that returns have a finite fourth moment with
# t(6) shocks (beta^2 + 2 alpha beta + 3 alpha^2 (df - 2) / (df - 4) < 1), so the variance of a
# window is a stable statistic and the late regime change stands out from ordinary clustering.
GARCH_ALPHA, GARCH_BETA = 0.06, 0.90
T_DEGREES_OF_FREEDOM = 6.0


@dataclass(frozen=True)
class SymbolProfile:
    first_close: float
    vol_annual: float  # calm regime; with volatile spells the realized figure is ~1.3x this
    drift_annual: float
    volume: float  # typical volume of a bar
    decimals: int
    every_day: bool = False  # crypto trades at weekends, the others on business days only


PROFILES = {
    "AAPL": SymbolProfile(150.0, 0.20, 0.12, 55e6, 2),
    "MSFT": SymbolProfile(300.0, 0.18, 0.12, 22e6, 2),
    "SPY": SymbolProfile(420.0, 0.11, 0.08, 70e6, 2),
    "BTCUSD": SymbolProfile(30_000.0, 0.45, 0.30, 25e3, 2, every_day=True),
    "EURUSD": SymbolProfile(1.08, 0.055, 0.0, 150e3, 5),
}
OTHER_PROFILE = SymbolProfile(100.0, 0.20, 0.08, 1e6, 2)


def late_regime_first_bar(n_bars: int) -> int:
    """Index of a symbol's first bar in the late regime (each symbol has `n_bars` bars)."""
    return n_bars - math.ceil(LATE_FRACTION * n_bars)


def demo_bars(
    symbols: tuple[str, ...] = DEMO_SYMBOLS,
    n_bars: int = 1500,
    end: datetime = DEMO_END,
    timeframe: str = "1d",
    seed: int = 7,
) -> pd.DataFrame:
    """`n_bars` bars per symbol ending at `end`; the same arguments always give the same frame."""
    profiles = [PROFILES.get(symbol, OTHER_PROFILE) for symbol in symbols]
    rng = np.random.default_rng(seed)
    sigma = np.array([p.vol_annual / math.sqrt(_bars_per_year(p, timeframe)) for p in profiles])
    late = np.arange(n_bars) >= late_regime_first_bar(n_bars)
    scale = _volatility_scale(rng, n_bars, len(symbols))
    scale *= np.where(late, LATE_VOL_MULTIPLIER, 1.0)[:, None]
    drift = np.array([p.drift_annual for p in profiles]) - np.where(
        late[:, None], LATE_DRIFT_SHIFT_SHARPE * np.array([p.vol_annual for p in profiles]), 0.0
    )
    bars_per_year = np.array([_bars_per_year(p, timeframe) for p in profiles])
    bar_sigma = sigma * scale
    returns = drift / bars_per_year - bar_sigma**2 / 2 + bar_sigma * _unit_t(rng, scale.shape)
    frames = [
        _ohlcv(rng, profile, returns[:, k], bar_sigma[:, k], late).assign(
            symbol=symbol, ts=_bar_times(profile, n_bars, end, timeframe)
        )
        for k, (symbol, profile) in enumerate(zip(symbols, profiles, strict=True))
    ]
    columns = ["symbol", "ts", "open", "high", "low", "close", "volume"]
    return pd.concat(frames, ignore_index=True)[columns]


def _bars_per_year(profile: SymbolProfile, timeframe: str) -> float:
    if timeframe == "1d":
        return 365.0 if profile.every_day else 252.0
    return pd.Timedelta(days=365) / timeframe_delta(timeframe)


def _unit_t(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Student-t shocks rescaled to unit variance: fat tails, same overall size."""
    df = T_DEGREES_OF_FREEDOM
    return rng.standard_t(df, size=shape) / math.sqrt(df / (df - 2))


def _volatility_scale(rng: np.random.Generator, n_bars: int, n_symbols: int) -> np.ndarray:
    """Per bar and symbol: the regime multiplier times the GARCH(1,1) volatility (mean 1)."""
    uniforms = rng.random((n_bars, n_symbols))
    shocks = _unit_t(rng, (n_bars, n_symbols))
    omega = 1.0 - GARCH_ALPHA - GARCH_BETA  # unconditional variance 1
    volatile = np.zeros(n_symbols, dtype=bool)
    variance = np.ones(n_symbols)
    scale = np.empty((n_bars, n_symbols))
    for t in range(n_bars):  # a recursion in time; vectorized across symbols
        stay = np.where(volatile, STAY_VOLATILE, STAY_CALM)
        volatile = np.where(uniforms[t] < stay, volatile, ~volatile)
        scale[t] = np.where(volatile, VOLATILE_MULTIPLIER, 1.0) * np.sqrt(variance)
        variance = omega + (GARCH_ALPHA * shocks[t] ** 2 + GARCH_BETA) * variance
    return scale


def _ohlcv(
    rng: np.random.Generator,
    profile: SymbolProfile,
    returns: np.ndarray,
    bar_sigma: np.ndarray,
    late: np.ndarray,
) -> pd.DataFrame:
    n_bars = len(returns)
    close = profile.first_close * np.exp(np.cumsum(returns))
    previous = np.concatenate([[profile.first_close], close[:-1]])
    gap_size = 0.05 if profile.every_day else 0.2  # no overnight session for crypto
    open_ = previous * np.exp(gap_size * bar_sigma * rng.standard_normal(n_bars))
    # The envelope is clipped at 3 sigma: a wick a thousand times the body would look wrong.
    reach = np.minimum(np.abs(rng.standard_normal((2, n_bars))), 3.0) * 0.5 * bar_sigma
    high = np.maximum(open_, close) * np.exp(reach[0])
    low = np.minimum(open_, close) * np.exp(-reach[1])
    move = np.abs(returns) / np.median(bar_sigma)  # volume follows the size of the move
    volume = (
        profile.volume
        * np.exp(0.3 * rng.standard_normal(n_bars))
        * (0.6 + 0.4 * move)
        * np.where(late, LATE_VOLUME_MULTIPLIER, 1.0)
    )
    # Rounding is monotone, so low <= min(open, close) <= max(open, close) <= high still holds.
    prices = np.round(np.column_stack([open_, high, low, close]), profile.decimals)
    frame = pd.DataFrame(prices, columns=["open", "high", "low", "close"])
    return frame.assign(volume=np.round(volume))


def _bar_times(
    profile: SymbolProfile, n_bars: int, end: datetime, timeframe: str
) -> pd.DatetimeIndex:
    end_utc = pd.Timestamp(end).tz_localize("UTC") if end.tzinfo is None else pd.Timestamp(end)
    if timeframe == "1d" and not profile.every_day:
        times = pd.bdate_range(end=end_utc.tz_convert("UTC"), periods=n_bars, normalize=False)
    else:
        times = pd.date_range(
            end=end_utc.tz_convert("UTC"), periods=n_bars, freq=timeframe_delta(timeframe)
        )
    return times.as_unit("us")
