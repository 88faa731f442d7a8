"""How fast `compute_features` builds the core_technical view, against the `ta` library.

Two shapes: 1 symbol x 1,000,000 bars and 100 symbols x 10,000 bars. Ours is timed on the full
data (best of 3). The baseline computes the same 16 features per symbol with `ta` classes (plus
plain pandas for the four `ta` lacks); it is timed on a 200,000-bar slice of the same data (the
first 200,000 bars, or the first 20 symbols) and compared per bar, because its ATR is a Python
loop per bar and a full run would take minutes. Peak memory of one `compute_features` call is
measured with tracemalloc in a separate, untimed run. No Django needed.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ta.momentum import RSIIndicator, StochasticOscillator  # noqa: E402
from ta.others import DailyLogReturnIndicator, DailyReturnIndicator  # noqa: E402
from ta.trend import MACD, EMAIndicator, SMAIndicator  # noqa: E402
from ta.volatility import AverageTrueRange, BollingerBands  # noqa: E402

from features.transforms import CORE_TECHNICAL, compute_features  # noqa: E402

SHAPES = ((1, 1_000_000), (100, 10_000))  # (symbols, bars per symbol)
BASELINE_BARS = 200_000
ROUNDS = 3


def make_bars(n_symbols: int, n_bars: int, seed: int = 0) -> pd.DataFrame:
    """Random-walk OHLCV in long format, sorted by (symbol, ts), minute bars in UTC."""
    rng = np.random.default_rng(seed)
    size = n_symbols * n_bars
    log_steps = rng.normal(0.0, 0.001, (n_symbols, n_bars))
    close = (rng.uniform(10, 500, (n_symbols, 1)) * np.exp(np.cumsum(log_steps, axis=1))).ravel()
    open_ = close * np.exp(rng.normal(0.0, 0.0005, size))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.0005, size)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.0005, size)))
    ts = pd.date_range("2020-01-01", periods=n_bars, freq="min", tz="UTC")
    symbols = [f"SYM{i:03d}" for i in range(n_symbols)]
    return pd.DataFrame(
        {"symbol": np.repeat(symbols, n_bars), "ts": np.tile(ts, n_symbols), "open": open_,
         "high": high, "low": low, "close": close, "volume": rng.lognormal(10.0, 1.0, size)}
    )  # fmt: skip


def ta_features_one_symbol(bars: pd.DataFrame) -> pd.DataFrame:
    """core_technical for one symbol with `ta` (pandas where `ta` has no such indicator)."""
    close, high, low, volume = bars["close"], bars["high"], bars["low"], bars["volume"]
    macd = MACD(close)
    bands = BollingerBands(close, 20, 2)
    log_ret = DailyLogReturnIndicator(close).daily_log_return() / 100
    columns = {
        "ret_1": DailyReturnIndicator(close).daily_return() / 100,
        "ret_5": close.pct_change(5),
        "ret_20": close.pct_change(20),
        "log_ret_1": log_ret,
        "sma_ratio_20": close / SMAIndicator(close, 20).sma_indicator() - 1,
        "ema_ratio_20": close / EMAIndicator(close, 20).ema_indicator() - 1,
        "macd": macd.macd(),
        "macd_signal": macd.macd_signal(),
        "macd_hist": macd.macd_diff(),
        "rsi_14": RSIIndicator(close, 14).rsi(),
        "bb_pctb_20": bands.bollinger_pband(),
        "bb_width_20": bands.bollinger_wband(),
        "atr_14": AverageTrueRange(high, low, close, 14).average_true_range(),
        "realized_vol_20": log_ret.rolling(20).std(),
        "volume_z_20": (volume - volume.rolling(20).mean()) / volume.rolling(20).std(),
        "stoch_k_14": StochasticOscillator(high, low, close, 14).stoch(),
    }
    return pd.DataFrame(columns)


def ta_features(bars: pd.DataFrame) -> pd.DataFrame:
    """The baseline: one symbol at a time, as one would use `ta` on a panel."""
    parts = [ta_features_one_symbol(part) for _, part in bars.groupby("symbol", sort=False)]
    return pd.concat(parts)


def best_seconds(function: Callable[[], object], rounds: int = ROUNDS) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def peak_memory_mb(bars: pd.DataFrame) -> float:
    tracemalloc.start()
    compute_features(bars)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def baseline_slice(bars: pd.DataFrame, n_symbols: int, n_bars: int) -> pd.DataFrame:
    """The first BASELINE_BARS bars: a prefix of one symbol, or the first few whole symbols."""
    if n_symbols == 1:
        return bars.iloc[:BASELINE_BARS]
    keep = bars["symbol"].unique()[: max(1, BASELINE_BARS // n_bars)]
    return bars[bars["symbol"].isin(keep)]


def bench_shape(n_symbols: int, n_bars: int) -> dict[str, float | str]:
    bars = make_bars(n_symbols, n_bars)
    ours_s = best_seconds(lambda: compute_features(bars))
    sample = baseline_slice(bars, n_symbols, n_bars)
    ta_s = best_seconds(lambda: ta_features(sample))
    ours_rate, ta_rate = len(bars) / ours_s, len(sample) / ta_s
    return {
        "shape": f"{n_symbols} x {n_bars:,}",
        "bars": len(bars),
        "ours_s": ours_s,
        "ours_rate": ours_rate,
        "ta_bars": len(sample),
        "ta_rate": ta_rate,
        "speedup": ours_rate / ta_rate,
        "peak_mb": peak_memory_mb(bars),
    }


def main() -> None:
    print(f"core_technical: {len(CORE_TECHNICAL)} features; best of {ROUNDS} runs each.")
    print(f"ta baseline timed on a {BASELINE_BARS:,}-bar slice, rates compared per bar.\n")
    header = (
        f"{'symbols x bars':>16} {'bars':>10} {'ours s':>8} {'ours bars/s':>12} "
        f"{'ta bars/s':>10} {'(ta on)':>9} {'speed-up':>9} {'peak MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for n_symbols, n_bars in SHAPES:
        row = bench_shape(n_symbols, n_bars)
        print(
            f"{row['shape']:>16} {row['bars']:>10,} {row['ours_s']:>8.3f} "
            f"{row['ours_rate']:>12,.0f} {row['ta_rate']:>10,.0f} {row['ta_bars']:>9,} "
            f"{row['speedup']:>8.1f}x {row['peak_mb']:>8.0f}"
        )
    print("\ntargets (issue #4 a): >= 1,000,000 bars/s and >= 10x the ta baseline")


if __name__ == "__main__":
    main()
