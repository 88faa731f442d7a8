"""The pure feature registry: what each feature is, and `compute_features` over a bar frame."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.transforms.indicators import INDICATORS
from features.transforms.panel import BarPanel, sort_order, utc_timestamps

# Smoothed (EWM) features depend on every earlier bar. An incremental run that starts this many
# bars early reproduces a full run: the slowest smoothing here is Wilder's alpha = 1/14, and
# (13/14)**400 ≈ 1e-13, so the seed's influence is below float noise.
SMOOTHING_SETTLE_BARS = 400


@dataclass(frozen=True, kw_only=True)
class FeatureSpec:
    """One feature: its parameters, its warm-up (leading NaN bars per symbol) and valid range."""

    name: str
    description: str
    dtype: str = "float64"
    params: dict[str, int | float] = field(default_factory=dict, hash=False)
    warmup_bars: int
    valid_min: float | None = None
    valid_max: float | None = None
    transform: str  # key in indicators.INDICATORS, called with **params
    smoothed: bool = False  # EWM-based: the value depends on all history, see lookback_bars

    @property
    def lookback_bars(self) -> int:
        """Bars of history to load before the first bar to (re)compute, for full-run values."""
        return self.warmup_bars + (SMOOTHING_SETTLE_BARS if self.smoothed else 0)

    def compute(self, panel: BarPanel) -> np.ndarray:
        """This feature's values for every row of `panel`, as float64."""
        values = INDICATORS[self.transform](panel, **self.params)
        return np.asarray(values, dtype=self.dtype)


_MACD = {"fast": 12, "slow": 26}
_MACD_SIGNAL = {**_MACD, "signal": 9}
_BOLLINGER = {"window": 20, "num_std": 2.0}

_SPECS = (
    FeatureSpec(name="ret_1", transform="simple_return", params={"periods": 1}, warmup_bars=1,
                valid_min=-1.0, description="1-bar simple return: close / previous close − 1."),
    FeatureSpec(name="ret_5", transform="simple_return", params={"periods": 5}, warmup_bars=5,
                valid_min=-1.0, description="5-bar simple return: close / close 5 bars ago − 1."),
    FeatureSpec(name="ret_20", transform="simple_return", params={"periods": 20}, warmup_bars=20,
                valid_min=-1.0, description="20-bar simple return: close / close 20 bars ago − 1."),
    FeatureSpec(name="log_ret_1", transform="log_return", params={"periods": 1}, warmup_bars=1,
                description="1-bar log return: ln(close / previous close)."),
    FeatureSpec(name="sma_ratio_20", transform="sma_ratio", params={"window": 20}, warmup_bars=19,
                valid_min=-1.0, description="close / 20-bar simple moving average − 1."),
    FeatureSpec(name="ema_ratio_20", transform="ema_ratio", params={"span": 20}, warmup_bars=19,
                valid_min=-1.0, smoothed=True,
                description="close / 20-bar EMA − 1 (alpha = 2/21, adjust=False, like ta)."),
    FeatureSpec(name="macd", transform="macd", params=_MACD, warmup_bars=25, smoothed=True,
                description="MACD line EMA12 − EMA26 of close, in price units (ta.trend.MACD)."),
    FeatureSpec(name="macd_signal", transform="macd_signal", params=_MACD_SIGNAL,
                warmup_bars=33, smoothed=True, description="9-bar EMA of the MACD line."),
    FeatureSpec(name="macd_hist", transform="macd_hist", params=_MACD_SIGNAL, warmup_bars=33,
                smoothed=True, description="MACD line − signal line (ta's macd_diff)."),
    FeatureSpec(name="rsi_14", transform="rsi", params={"window": 14}, warmup_bars=13,
                valid_min=0.0, valid_max=100.0, smoothed=True,
                description="14-bar RSI, Wilder smoothing as ta.momentum.RSIIndicator."),
    FeatureSpec(name="bb_pctb_20", transform="bollinger_pctb", params=_BOLLINGER,
                warmup_bars=19, description="Bollinger %B (20 bars, 2 population std): "
                "(close − lower) / (upper − lower); 0 at the lower band, 1 at the upper."),
    FeatureSpec(name="bb_width_20", transform="bollinger_width", params=_BOLLINGER,
                warmup_bars=19, valid_min=0.0, description="Bollinger bandwidth in percent "
                "of the middle band: 100 · (upper − lower) / SMA20, like ta's wband."),
    FeatureSpec(name="atr_14", transform="atr", params={"window": 14}, warmup_bars=13,
                valid_min=0.0, smoothed=True,
                description="14-bar average true range, Wilder, in price units (ta's seeding)."),
    FeatureSpec(name="realized_vol_20", transform="realized_vol", params={"window": 20},
                warmup_bars=20, valid_min=0.0, description="Sample std (ddof=1) of the last 20 "
                "1-bar log returns, per bar: not annualised (multiply by √bars-per-year)."),
    FeatureSpec(name="volume_z_20", transform="volume_zscore", params={"window": 20},
                warmup_bars=19, description="Volume z-score over the last 20 bars "
                "(current bar included, sample std ddof=1)."),
    FeatureSpec(name="stoch_k_14", transform="stochastic_k", params={"window": 14},
                warmup_bars=13, valid_min=0.0, valid_max=100.0,
                description="Stochastic %K over 14 bars (ta.momentum.StochasticOscillator)."),
)  # fmt: skip

FEATURE_SPECS: dict[str, FeatureSpec] = {spec.name: spec for spec in _SPECS}
CORE_TECHNICAL: tuple[str, ...] = tuple(spec.name for spec in _SPECS)


def _specs(names: Iterable[str]) -> list[FeatureSpec]:
    names = list(names)
    unknown = [name for name in names if name not in FEATURE_SPECS]
    if unknown:
        raise KeyError(f"unknown feature(s): {', '.join(unknown)}")
    return [FEATURE_SPECS[name] for name in names]


def max_warmup_bars(names: Iterable[str] = CORE_TECHNICAL) -> int:
    """Look-back an incremental materialization needs: bars to load before the first new bar.

    Windowed features need their warm-up; smoothed ones also SMOOTHING_SETTLE_BARS more, so the
    incremental values equal a full recomputation (to ~1e-12 relative) instead of a re-seeding.
    """
    return max((spec.lookback_bars for spec in _specs(names)), default=0)


def compute_features(bars: pd.DataFrame, names: Iterable[str] = CORE_TECHNICAL) -> pd.DataFrame:
    """Features for every bar: one float64 column per name, aligned to `bars` (same index/order).

    `bars` has columns symbol, ts (timezone-aware bar close time), open, high, low, close, volume
    in any row order. Rows without enough history of their own symbol are NaN.
    """
    specs = _specs(names)
    ts = utc_timestamps(bars)
    order = sort_order(bars["symbol"].to_numpy(), ts.to_numpy(dtype="datetime64[ns]").view("i8"))
    ordered = bars if order is None else bars.iloc[order]
    panel = BarPanel.from_sorted(ordered)
    values = {spec.name: spec.compute(panel) for spec in specs}
    if order is not None:
        restore = np.empty_like(order)
        restore[order] = np.arange(len(order))
        values = {name: column[restore] for name, column in values.items()}
    frame = pd.DataFrame(values, index=bars.index, copy=False)  # no copy: a block per column
    frame.insert(0, "ts", ts)
    frame.insert(0, "symbol", bars["symbol"])
    return frame
