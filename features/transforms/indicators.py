"""Indicator functions: each takes a BarPanel plus keyword parameters and returns float64 values.

Conventions follow the `ta` package (0.11) wherever it has the indicator, so the values can be
checked against it; the docstrings state the formula and any deliberate difference.
Notation: c, h, l, v = close, high, low, volume of the bar; x_{t−k} = k bars earlier, same symbol.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from features.transforms.panel import BarPanel

Indicator = Callable[..., np.ndarray]


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (a flat window has no scale)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator == 0, np.nan, numerator / denominator)


def _sma(panel: BarPanel, column: str, window: int) -> np.ndarray:
    key = ("sma", column, window)
    return panel.memo(key, lambda: panel.rolling(panel[column], window).mean().to_numpy())


def _std(panel: BarPanel, column: str, window: int, ddof: int) -> np.ndarray:
    key = ("std", column, window, ddof)
    return panel.memo(key, lambda: panel.rolling(panel[column], window).std(ddof=ddof).to_numpy())


def _ema(panel: BarPanel, span: int) -> np.ndarray:
    """EMA of close, alpha = 2/(span+1), seeded with the first close, NaN for span−1 bars."""
    key = ("ema", span)
    alpha = 2.0 / (span + 1)
    return panel.memo(key, lambda: panel.ewm(panel["close"], alpha=alpha, min_periods=span))


def simple_return(panel: BarPanel, *, periods: int) -> np.ndarray:
    """ret_k = c_t / c_{t−k} − 1 (a fraction; ta's DailyReturnIndicator is this × 100 for k=1)."""
    close = panel["close"]
    return close / panel.lag(close, periods) - 1.0


def log_return(panel: BarPanel, *, periods: int) -> np.ndarray:
    """log_ret_k = ln(c_t / c_{t−k}) (ta's DailyLogReturnIndicator is this × 100 for k=1)."""
    close = panel["close"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(close / panel.lag(close, periods))


def sma_ratio(panel: BarPanel, *, window: int) -> np.ndarray:
    """c_t / SMA_w(c)_t − 1, SMA_w = mean of the last w closes (ta.trend.SMAIndicator)."""
    return panel["close"] / _sma(panel, "close", window) - 1.0


def ema_ratio(panel: BarPanel, *, span: int) -> np.ndarray:
    """c_t / EMA_span(c)_t − 1, EMA as ta.trend.EMAIndicator (adjust=False, alpha=2/(span+1))."""
    return panel["close"] / _ema(panel, span) - 1.0


def _macd_line(panel: BarPanel, fast: int, slow: int) -> np.ndarray:
    return panel.memo(("macd", fast, slow), lambda: _ema(panel, fast) - _ema(panel, slow))


def _macd_signal(panel: BarPanel, fast: int, slow: int, signal: int) -> np.ndarray:
    line = _macd_line(panel, fast, slow)
    alpha = 2.0 / (signal + 1)
    key = ("macd_signal", fast, slow, signal)
    return panel.memo(key, lambda: panel.ewm(line, alpha=alpha, min_periods=signal))


def macd(panel: BarPanel, *, fast: int, slow: int) -> np.ndarray:
    """MACD line = EMA_fast(c) − EMA_slow(c), in price units (ta.trend.MACD.macd)."""
    return _macd_line(panel, fast, slow)


def macd_signal(panel: BarPanel, *, fast: int, slow: int, signal: int) -> np.ndarray:
    """Signal = EMA_signal of the MACD line, seeded at its first value (ta MACD.macd_signal)."""
    return _macd_signal(panel, fast, slow, signal)


def macd_hist(panel: BarPanel, *, fast: int, slow: int, signal: int) -> np.ndarray:
    """Histogram = MACD line − signal (ta.trend.MACD.macd_diff)."""
    return _macd_line(panel, fast, slow) - _macd_signal(panel, fast, slow, signal)


def rsi(panel: BarPanel, *, window: int) -> np.ndarray:
    """RSI = 100 · U / (U + D), U and D Wilder averages (alpha = 1/w) of gains and losses.

    As in ta.momentum.RSIIndicator the averages are ewm(adjust=False) seeded at the symbol's
    first bar, whose change counts as 0 (not Wilder's SMA seed); 100 when D = 0.
    """
    close = panel["close"]
    change = np.nan_to_num(close - panel.lag(close, 1), nan=0.0)
    alpha = 1.0 / window
    gain = panel.ewm(np.maximum(change, 0.0), alpha=alpha, min_periods=window)
    loss = panel.ewm(np.maximum(-change, 0.0), alpha=alpha, min_periods=window)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(loss == 0, 100.0, 100.0 * gain / (gain + loss))


def _bollinger(panel: BarPanel, window: int, num_std: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) band = SMA_w(c) ∓ num_std · population std_w(c) (ddof=0, like ta)."""
    middle = _sma(panel, "close", window)
    spread = num_std * _std(panel, "close", window, ddof=0)
    return middle - spread, middle + spread


def bollinger_pctb(panel: BarPanel, *, window: int, num_std: float) -> np.ndarray:
    """%B = (c − lower) / (upper − lower); NaN on a flat window (ta BollingerBands.pband)."""
    lower, upper = _bollinger(panel, window, num_std)
    return _safe_divide(panel["close"] - lower, upper - lower)


def bollinger_width(panel: BarPanel, *, window: int, num_std: float) -> np.ndarray:
    """Bandwidth = 100 · (upper − lower) / SMA_w(c), in percent (ta BollingerBands.wband)."""
    lower, upper = _bollinger(panel, window, num_std)
    return 100.0 * (upper - lower) / _sma(panel, "close", window)


def atr(panel: BarPanel, *, window: int) -> np.ndarray:
    """ATR = Wilder average (alpha = 1/w) of the true range, as ta.volatility.AverageTrueRange.

    TR_t = max(h − l, |h − c_{t−1}|, |l − c_{t−1}|), and h − l on a symbol's first bar. Seed:
    ATR at the w-th bar = mean of the first w TRs; then ATR_t = ((w − 1)·ATR_{t−1} + TR_t) / w.
    ta reports 0 before the seed; we report NaN.
    """
    high, low = panel["high"], panel["low"]
    prev_close = panel.lag(panel["close"], 1)
    true_range = np.fmax(high - low, np.fmax(np.abs(high - prev_close), np.abs(low - prev_close)))
    seeded = true_range.copy()
    seeded[panel.position < window - 1] = np.nan  # ewm starts at the first non-NaN input
    seed_rows = panel.position == window - 1
    seeded[seed_rows] = panel.rolling(true_range, window).mean().to_numpy()[seed_rows]
    return panel.ewm(seeded, alpha=1.0 / window, min_periods=1)


def realized_vol(panel: BarPanel, *, window: int) -> np.ndarray:
    """Sample std (ddof=1) of the last w one-bar log returns; per bar, not annualised."""
    log_ret = panel.memo(("log_ret", 1), lambda: log_return(panel, periods=1))
    return panel.rolling(log_ret, window).std(ddof=1).to_numpy()


def volume_zscore(panel: BarPanel, *, window: int) -> np.ndarray:
    """(v_t − mean_w(v)) / std_w(v), sample std (ddof=1), window includes the current bar."""
    deviation = panel["volume"] - _sma(panel, "volume", window)
    return _safe_divide(deviation, _std(panel, "volume", window, ddof=1))


def stochastic_k(panel: BarPanel, *, window: int) -> np.ndarray:
    """%K = 100 · (c − min_w(l)) / (max_w(h) − min_w(l)) (ta.momentum.StochasticOscillator)."""
    lowest = panel.rolling(panel["low"], window).min().to_numpy()
    highest = panel.rolling(panel["high"], window).max().to_numpy()
    return 100.0 * _safe_divide(panel["close"] - lowest, highest - lowest)


INDICATORS: dict[str, Indicator] = {
    "simple_return": simple_return,
    "log_return": log_return,
    "sma_ratio": sma_ratio,
    "ema_ratio": ema_ratio,
    "macd": macd,
    "macd_signal": macd_signal,
    "macd_hist": macd_hist,
    "rsi": rsi,
    "bollinger_pctb": bollinger_pctb,
    "bollinger_width": bollinger_width,
    "atr": atr,
    "realized_vol": realized_vol,
    "volume_zscore": volume_zscore,
    "stochastic_k": stochastic_k,
}
