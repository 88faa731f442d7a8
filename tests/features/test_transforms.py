"""features.transforms: values against the `ta` package (0.11) or a textbook pandas formula,
computed per symbol on generated bars, plus isolation between symbols and the registry contract.

No django_db marks: pytest-django blocks database access here, which keeps the module pure.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ta.momentum import RSIIndicator, StochasticOscillator
from ta.others import DailyLogReturnIndicator, DailyReturnIndicator
from ta.trend import MACD, EMAIndicator, SMAIndicator
from ta.volatility import AverageTrueRange, BollingerBands

from features.transforms import (
    CORE_TECHNICAL,
    FEATURE_SPECS,
    INDICATORS,
    compute_features,
    max_warmup_bars,
    sort_bars,
)

SYMBOLS = ("AAA", "BBB", "CCC")
START_PRICES = (12.0, 180.0, 4_500.0)  # different scales, so a leak across symbols would show
N_BARS = 600
ABS_TOLERANCE = 1e-6


def make_bars(seed: int = 7, n_bars: int = N_BARS, volatility: float = 0.01) -> pd.DataFrame:
    """Deterministic random-walk OHLCV, one block per symbol, hourly bars ending at bar close."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol, start in zip(SYMBOLS, START_PRICES, strict=True):
        close = start * np.exp(np.cumsum(rng.normal(0.0, volatility, n_bars)))
        open_ = close * np.exp(rng.normal(0.0, 0.004, n_bars))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n_bars)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n_bars)))
        volume = rng.lognormal(12.0, 0.6, n_bars)
        ts = pd.date_range("2024-01-01 01:00", periods=n_bars, freq="h", tz="UTC")
        frames.append(
            pd.DataFrame({"symbol": symbol, "ts": ts, "open": open_, "high": high, "low": low,
                          "close": close, "volume": volume})
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def features(bars: pd.DataFrame) -> pd.DataFrame:
    return compute_features(bars)


def per_symbol(
    bars: pd.DataFrame, features: pd.DataFrame, symbol: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One symbol's bars and features with a fresh RangeIndex, as `ta` expects."""
    mask = bars["symbol"] == symbol
    return bars[mask].reset_index(drop=True), features[mask].reset_index(drop=True)


def assert_matches(ours: pd.Series, reference: pd.Series, warmup_bars: int) -> None:
    """After the warm-up both are finite and equal to ABS_TOLERANCE; before it ours is NaN."""
    assert ours.iloc[:warmup_bars].isna().all()
    ours_valid, ref_valid = ours.iloc[warmup_bars:].to_numpy(), reference.iloc[warmup_bars:]
    assert np.isfinite(ours_valid).all()
    np.testing.assert_allclose(ours_valid, ref_valid.to_numpy(), rtol=0, atol=ABS_TOLERANCE)


# feature -> (reference, builder from one symbol's bars); `ta` is the reference where it has it.
TA_REFERENCES: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]] = {
    "ret_1": ("ta.others.DailyReturnIndicator / 100",
              lambda b: DailyReturnIndicator(b.close).daily_return() / 100),
    "log_ret_1": ("ta.others.DailyLogReturnIndicator / 100",
                  lambda b: DailyLogReturnIndicator(b.close).daily_log_return() / 100),
    "sma_ratio_20": ("ta.trend.SMAIndicator(20)",
                     lambda b: b.close / SMAIndicator(b.close, 20).sma_indicator() - 1),
    "ema_ratio_20": ("ta.trend.EMAIndicator(20)",
                     lambda b: b.close / EMAIndicator(b.close, 20).ema_indicator() - 1),
    "macd": ("ta.trend.MACD.macd", lambda b: MACD(b.close).macd()),
    "macd_signal": ("ta.trend.MACD.macd_signal", lambda b: MACD(b.close).macd_signal()),
    "macd_hist": ("ta.trend.MACD.macd_diff", lambda b: MACD(b.close).macd_diff()),
    "rsi_14": ("ta.momentum.RSIIndicator(14)", lambda b: RSIIndicator(b.close, 14).rsi()),
    "bb_pctb_20": ("ta.volatility.BollingerBands(20, 2).bollinger_pband",
                   lambda b: BollingerBands(b.close, 20, 2).bollinger_pband()),
    "bb_width_20": ("ta.volatility.BollingerBands(20, 2).bollinger_wband",
                    lambda b: BollingerBands(b.close, 20, 2).bollinger_wband()),
    "atr_14": ("ta.volatility.AverageTrueRange(14)",
               lambda b: AverageTrueRange(b.high, b.low, b.close, 14).average_true_range()),
    "stoch_k_14": ("ta.momentum.StochasticOscillator(14).stoch",
                   lambda b: StochasticOscillator(b.high, b.low, b.close, 14).stoch()),
}  # fmt: skip

# Features `ta` lacks: a straightforward per-symbol pandas formula is the reference.
TEXTBOOK_REFERENCES: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]] = {
    "ret_5": ("close.pct_change(5)", lambda b: b.close.pct_change(5)),
    "ret_20": ("close.pct_change(20)", lambda b: b.close.pct_change(20)),
    "realized_vol_20": ("log(close).diff().rolling(20).std()",
                        lambda b: np.log(b.close).diff().rolling(20).std()),
    "volume_z_20": ("(volume − rolling(20).mean()) / rolling(20).std()",
                    lambda b: (b.volume - b.volume.rolling(20).mean())
                    / b.volume.rolling(20).std()),
}  # fmt: skip

REFERENCES = {**TA_REFERENCES, **TEXTBOOK_REFERENCES}


@pytest.mark.parametrize(
    "name", list(REFERENCES), ids=[f"{name} vs {REFERENCES[name][0]}" for name in REFERENCES]
)
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_each_feature_equals_its_reference_computed_on_that_symbol_alone(
    bars: pd.DataFrame, features: pd.DataFrame, name: str, symbol: str
) -> None:
    symbol_bars, symbol_features = per_symbol(bars, features, symbol)
    _, reference = REFERENCES[name]
    assert_matches(symbol_features[name], reference(symbol_bars), FEATURE_SPECS[name].warmup_bars)


def test_every_core_technical_feature_has_a_reference() -> None:
    assert set(REFERENCES) == set(CORE_TECHNICAL)


def test_atr_differs_from_ta_only_by_nan_instead_of_zero_during_warm_up(bars: pd.DataFrame) -> None:
    symbol_bars, symbol_features = per_symbol(bars, compute_features(bars), "BBB")
    ta_atr = AverageTrueRange(symbol_bars.high, symbol_bars.low, symbol_bars.close, 14)
    assert (ta_atr.average_true_range().iloc[:13] == 0).all()
    assert symbol_features["atr_14"].iloc[:13].isna().all()


@pytest.mark.parametrize("name", CORE_TECHNICAL)
def test_each_symbol_starts_with_exactly_warmup_bars_nan_rows(
    features: pd.DataFrame, name: str
) -> None:
    for _, column in features.groupby("symbol")[name]:
        first_valid = int(np.argmax(column.notna().to_numpy()))
        assert first_valid == FEATURE_SPECS[name].warmup_bars


def test_the_first_rows_of_the_second_symbol_are_nan_for_windowed_features(
    features: pd.DataFrame,
) -> None:
    second = features[features["symbol"] == SYMBOLS[1]]
    assert second[["ret_1", "log_ret_1", "atr_14", "rsi_14"]].iloc[0].isna().all()
    windowed = ["ret_20", "sma_ratio_20", "bb_pctb_20", "realized_vol_20"]
    assert second[windowed].iloc[:19].isna().all(axis=None)


def test_changing_one_symbols_bars_never_changes_another_symbols_features(
    bars: pd.DataFrame, features: pd.DataFrame
) -> None:
    changed = bars.copy()
    first = changed["symbol"] == SYMBOLS[0]
    noise = np.random.default_rng(1).uniform(0.5, 3.0, first.sum())
    changed.loc[first, ["open", "high", "low", "close"]] *= noise[:, None]
    changed.loc[first, "volume"] *= 1_000.0
    recomputed = compute_features(changed)
    assert not recomputed[first].equals(features[first])
    pd.testing.assert_frame_equal(recomputed[~first], features[~first], check_exact=True)


def test_a_symbol_computed_alone_equals_the_same_symbol_inside_the_panel(
    bars: pd.DataFrame, features: pd.DataFrame
) -> None:
    middle = bars["symbol"] == SYMBOLS[1]
    alone = compute_features(bars[middle])
    pd.testing.assert_frame_equal(alone, features[middle], check_exact=True)


def test_missing_symbols_are_rejected(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="symbol has missing values"):
        compute_features(bars.assign(symbol=bars["symbol"].where(bars.index != 3)))


def test_feature_specs_are_hashable_despite_their_params_dict() -> None:
    assert len({FEATURE_SPECS[name] for name in CORE_TECHNICAL}) == len(CORE_TECHNICAL)


def test_shuffled_input_gives_the_same_features_in_the_callers_row_order(
    bars: pd.DataFrame, features: pd.DataFrame
) -> None:
    shuffled = bars.sample(frac=1.0, random_state=3)
    result = compute_features(shuffled)
    assert result.index.equals(shuffled.index)
    pd.testing.assert_frame_equal(result.sort_index(), features, check_exact=True)


def test_output_is_one_float64_column_per_feature_aligned_to_the_input(
    bars: pd.DataFrame, features: pd.DataFrame
) -> None:
    assert list(features.columns) == ["symbol", "ts", *CORE_TECHNICAL]
    assert features.index.equals(bars.index)
    assert (features[list(CORE_TECHNICAL)].dtypes == "float64").all()
    assert features["ts"].equals(bars["ts"])


def test_rsi_and_stochastic_stay_within_0_and_100(features: pd.DataFrame) -> None:
    for name in ("rsi_14", "stoch_k_14"):
        assert features[name].dropna().between(0.0, 100.0).all()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), volatility=st.sampled_from([0.0, 0.001, 0.05]))
def test_every_feature_respects_its_valid_range_and_is_never_infinite(
    seed: int, volatility: float
) -> None:
    bars = make_bars(seed=seed, n_bars=60, volatility=volatility)
    flat = bars["symbol"] == SYMBOLS[0]
    bars.loc[flat, ["open", "high", "low", "close"]] = 50.0  # flat prices: zero ranges and stds
    bars.loc[flat, "volume"] = 1_000.0
    features = compute_features(bars)
    for name in CORE_TECHNICAL:
        spec, values = FEATURE_SPECS[name], features[name].dropna()
        assert not np.isinf(values).any(), name
        assert spec.valid_min is None or (values >= spec.valid_min).all(), name
        assert spec.valid_max is None or (values <= spec.valid_max).all(), name


def test_an_incremental_run_with_max_warmup_bars_of_look_back_matches_a_full_run(
    bars: pd.DataFrame, features: pd.DataFrame
) -> None:
    new_bars, look_back = 40, max_warmup_bars(CORE_TECHNICAL)
    tail = bars.groupby("symbol").tail(look_back + new_bars)
    incremental = compute_features(tail).groupby("symbol").tail(new_bars)
    full = features.loc[incremental.index, list(CORE_TECHNICAL)]
    np.testing.assert_allclose(incremental[list(CORE_TECHNICAL)], full, rtol=1e-9, atol=1e-12)


def test_max_warmup_bars_is_the_longest_warm_up_plus_settling_for_smoothed_features() -> None:
    assert max_warmup_bars(["ret_1", "ret_20", "sma_ratio_20"]) == 20
    assert max_warmup_bars(["macd_signal"]) == FEATURE_SPECS["macd_signal"].lookback_bars > 33
    assert max_warmup_bars([]) == 0


def test_registry_lists_core_technical_in_order_with_known_transforms() -> None:
    assert CORE_TECHNICAL[:4] == ("ret_1", "ret_5", "ret_20", "log_ret_1")
    assert len(CORE_TECHNICAL) == 16
    assert all(FEATURE_SPECS[name].transform in INDICATORS for name in CORE_TECHNICAL)
    assert all(FEATURE_SPECS[name].dtype == "float64" for name in CORE_TECHNICAL)


def test_a_subset_of_names_computes_only_those_columns(bars: pd.DataFrame) -> None:
    result = compute_features(bars, names=["rsi_14", "ret_1"])
    assert list(result.columns) == ["symbol", "ts", "rsi_14", "ret_1"]


def test_an_unknown_feature_name_is_rejected(bars: pd.DataFrame) -> None:
    with pytest.raises(KeyError, match="rsi_99"):
        compute_features(bars, names=["rsi_99"])


def test_naive_timestamps_are_rejected(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_features(bars.assign(ts=bars["ts"].dt.tz_localize(None)))


def test_two_bars_with_the_same_symbol_and_ts_are_rejected(bars: pd.DataFrame) -> None:
    duplicated = pd.concat([bars, bars.iloc[[5]]], ignore_index=True)
    with pytest.raises(ValueError, match="duplicate bar for symbol 'AAA'"):
        sort_bars(duplicated)


def test_sort_bars_orders_by_symbol_then_ts_and_keeps_the_index(bars: pd.DataFrame) -> None:
    shuffled = bars.sample(frac=1.0, random_state=5)
    pd.testing.assert_frame_equal(sort_bars(shuffled), bars)


def test_empty_bars_give_an_empty_frame_with_every_column(bars: pd.DataFrame) -> None:
    result = compute_features(bars.iloc[:0])
    assert result.empty
    assert list(result.columns) == ["symbol", "ts", *CORE_TECHNICAL]


def test_the_transforms_package_imports_without_django() -> None:
    repo_root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, features.transforms; "
        "sys.exit(any(m.startswith('django') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=repo_root, check=False).returncode == 0
