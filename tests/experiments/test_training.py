"""The pure training pipeline: no database, no Django (see the import test at the bottom)."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from experiments.training import (
    TrainingResult,
    artifact_sha256,
    classification_metrics,
    histogram_counts,
    model_from_bytes,
    model_to_bytes,
    next_bar_labels,
    positions_from_proba,
    reference_statistics,
    trading_metrics,
    train_walk_forward,
    walk_forward_splits,
)
from features.demo import demo_bars
from features.transforms import CORE_TECHNICAL, compute_features

T0 = pd.Timestamp("2025-01-06 21:00", tz="UTC")


def _day(n: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=n)


# --- labels ---------------------------------------------------------------------------------


def test_labels_say_whether_the_next_close_is_higher_and_drop_each_symbols_last_bar() -> None:
    bars = pd.DataFrame(
        {
            "symbol": ["BBB", "AAA", "AAA", "BBB", "AAA", "AAA"],
            "ts": [_day(1), _day(2), _day(0), _day(0), _day(1), _day(3)],
            "close": [50.0, 12.0, 10.0, 40.0, 11.0, 12.0],
        }
    )
    labels = next_bar_labels(bars)
    expected = pd.DataFrame(
        {
            "symbol": ["AAA", "BBB", "AAA", "AAA"],
            "ts": [_day(0), _day(0), _day(1), _day(2)],
            "label": [1, 1, 1, 0],  # 12 -> 12 is not up
            "fwd_return": [0.1, 0.25, 12 / 11 - 1, 0.0],
        }
    )
    pd.testing.assert_frame_equal(labels, expected, check_exact=False, rtol=1e-15)


def test_a_label_reads_no_close_beyond_the_next_bar() -> None:
    bars = demo_bars(symbols=("AAA",), n_bars=50, seed=1)
    changed = bars.copy()
    changed.loc[30:, "close"] *= 3.0  # bars from 30 on: rows up to 28 must not move
    before, after = next_bar_labels(bars), next_bar_labels(changed)
    pd.testing.assert_frame_equal(before.iloc[:29], after.iloc[:29])
    assert not before.iloc[29:30].equals(after.iloc[29:30])


@pytest.mark.parametrize(
    ("bars", "message"),
    [
        (pd.DataFrame({"symbol": ["A"], "ts": [T0]}), "lack required column"),
        (pd.DataFrame({"symbol": ["A"], "ts": [T0.tz_localize(None)], "close": [1.0]}), "aware"),
        (pd.DataFrame({"symbol": ["A", "A"], "ts": [T0, T0], "close": [1.0, 2.0]}), "duplicate"),
    ],
)
def test_labels_reject_bad_bars(bars: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next_bar_labels(bars)


# --- walk-forward folds ---------------------------------------------------------------------


def test_folds_expand_in_time_and_keep_the_symbols_of_a_timestamp_together() -> None:
    ts = np.repeat(np.arange(10), 2)[np.random.default_rng(0).permutation(20)]
    splits = walk_forward_splits(ts, n_folds=3, min_train=4, gap=1)
    windows = [(sorted(set(ts[train])), sorted(set(ts[test]))) for train, test in splits]
    assert windows == [
        ([0, 1, 2], [4, 5]),
        ([0, 1, 2, 3, 4], [6, 7]),
        ([0, 1, 2, 3, 4, 5, 6], [8, 9]),
    ]
    for train, test in splits:
        assert len(test) == 2 * len(set(ts[test]))  # both symbols of every test timestamp
        assert list(train) == sorted(train) and list(test) == sorted(test)


def test_a_fractional_min_train_is_a_share_of_the_unique_timestamps() -> None:
    ts = pd.Series(pd.date_range(T0, periods=10, freq="D")).repeat(3)
    splits = walk_forward_splits(ts, n_folds=2, min_train=0.55, gap=0)  # floor(5.5) = 5
    assert [len(set(ts.iloc[test])) for _, test in splits] == [3, 2]
    assert ts.iloc[splits[0][0]].max() == T0 + pd.Timedelta(days=4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_folds": 0, "min_train": 2}, "n_folds must be an integer >= 1"),
        ({"n_folds": 2.0, "min_train": 2}, "n_folds must be an integer"),
        ({"n_folds": 2, "min_train": 0}, "min_train must be >= 1"),
        ({"n_folds": 2, "min_train": 1.0}, r"float in \(0, 1\)"),
        ({"n_folds": 2, "min_train": True}, "min_train must be"),
        ({"n_folds": 2, "min_train": 2, "gap": -1}, "gap must be an integer >= 0"),
        ({"n_folds": 5, "min_train": 8}, "fewer than n_folds=5"),
        ({"n_folds": 2, "min_train": 2, "gap": 2}, "gap=2 leaves no training"),
    ],
)
def test_walk_forward_splits_explain_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        walk_forward_splits(np.arange(10), **kwargs)


def test_walk_forward_splits_reject_missing_timestamps() -> None:
    with pytest.raises(ValueError, match="1 missing"):
        walk_forward_splits(pd.Series([T0, pd.NaT, _day(1)]), n_folds=1, min_train=1)


@st.composite
def _fold_cases(draw: st.DrawFn) -> tuple[list[int], int, int, int]:
    """Rows per timestamp (1-3 symbols), then valid n_folds, min_train and gap for them."""
    counts = draw(st.lists(st.integers(1, 3), min_size=2, max_size=40))
    n_folds = draw(st.integers(1, min(6, len(counts) - 1)))
    min_train = draw(st.integers(1, len(counts) - n_folds))
    return counts, n_folds, min_train, draw(st.integers(0, min_train - 1))


@settings(max_examples=60, deadline=None)
@given(case=_fold_cases(), shuffle_seed=st.integers(0, 2**16))
def test_folds_partition_the_test_range_after_training(
    case: tuple[list[int], int, int, int], shuffle_seed: int
) -> None:
    counts, n_folds, min_train, gap = case
    n_unique = len(counts)
    ts = np.repeat(np.arange(n_unique) * 7, counts)  # 0, 7, 14, ...: ranks differ from values
    ts = ts[np.random.default_rng(shuffle_seed).permutation(len(ts))]
    rank = ts // 7
    tested = []
    for train, test in walk_forward_splits(ts, n_folds, min_train, gap):
        window = np.unique(rank[test])
        assert list(window) == list(range(window[0], window[-1] + 1))  # contiguous
        assert set(test) == set(np.flatnonzero(np.isin(rank, window)))  # whole timestamps
        assert set(train) == set(np.flatnonzero(rank < window[0] - gap))  # expanding, embargo
        tested.extend(window)
    assert tested == list(range(min_train, n_unique))  # in order, no overlap, no hole


# --- classification and trading metrics -----------------------------------------------------


def test_classification_metrics_equal_scikit_learns() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    proba = np.clip(0.5 + 0.2 * (labels - 0.5) + rng.normal(0, 0.2, 200), 0.01, 0.99)
    proba[:3] = 0.5  # exactly 0.5 predicts class 0
    metrics = classification_metrics(labels, proba)
    assert metrics["accuracy"] == accuracy_score(labels, (proba > 0.5).astype(int))
    assert metrics["roc_auc"] == roc_auc_score(labels, proba)
    assert metrics["log_loss"] == log_loss(labels, proba)


def test_roc_auc_is_nan_when_only_one_class_is_present() -> None:
    metrics = classification_metrics([1, 1, 1], [0.6, 0.4, 0.7])
    assert math.isnan(metrics["roc_auc"])
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["log_loss"] == log_loss([1, 1, 1], [0.6, 0.4, 0.7], labels=[0, 1])


def test_positions_go_long_above_one_half_short_below_and_flat_at_it_or_nan() -> None:
    proba = [0.7, 0.5, 0.2, np.nan]
    assert positions_from_proba(proba).tolist() == [1.0, 0.0, -1.0, 0.0]
    assert positions_from_proba(proba, long_only=True).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_trading_metrics_of_one_symbol_match_the_textbook_by_hand() -> None:
    # r = position x return = [0.01, -0.02, 0.03, 0, 0.02]; mean 0.008; squared deviations
    # 4e-6 + 784e-6 + 484e-6 + 64e-6 + 144e-6 = 1480e-6, / (5 - 1) = 370e-6.
    # Equity 1.01, 0.9898, 1.019494, 1.019494, 1.03988388: worst fall 0.9898 / 1.01 - 1 = -2%.
    # Hits: 3 of the 4 bars with a position; changes |1| + 0 + |-2| + |1| + |1| = 5 over 5 bars.
    metrics = trading_metrics(
        [1, 1, -1, 0, 1], [0.01, -0.02, -0.03, 0.05, 0.02], ts=[_day(n) for n in range(5)]
    )
    expected = {
        "sharpe": 0.008 / math.sqrt(370e-6) * math.sqrt(252),
        "max_drawdown": -0.02,
        "hit_rate": 0.75,
        "turnover": 1.0,
        "total_return": 0.03988388,
        "n_periods": 5.0,
    }
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12, rel=0), key


def test_trading_metrics_weight_symbols_equally_per_timestamp_by_hand() -> None:
    # AAA long, long, long on returns 2%, -1%, 3%; BBB short, flat, long on 1%, 4%, -2%.
    # Per timestamp R = [(0.02 - 0.01) / 2, (-0.01 + 0) / 2, (0.03 - 0.02) / 2]
    #                  = 0.005 x [1, -1, 1]:
    # mean 0.005 / 3, std 0.005 x sqrt(4 / 3) -> sharpe = sqrt(252 x 3) / 6.
    # Equity 1.005, 0.999975, 1.004974875: worst fall 0.995 - 1.
    # Hits: AAA days 0 and 2, of the 5 rows with a position.
    # Changes: AAA 1, BBB 1 + 1 + 1, over 6 rows.
    rows = pd.DataFrame(
        {
            "symbol": ["AAA", "AAA", "AAA", "BBB", "BBB", "BBB"],
            "ts": [_day(0), _day(1), _day(2)] * 2,
            "position": [1, 1, 1, -1, 0, 1],
            "fwd_return": [0.02, -0.01, 0.03, 0.01, 0.04, -0.02],
        }
    ).sample(frac=1.0, random_state=4)  # any row order
    metrics = trading_metrics(
        rows["position"], rows["fwd_return"], rows["ts"], symbols=rows["symbol"]
    )
    assert metrics["sharpe"] == pytest.approx(math.sqrt(252 * 3) / 6, abs=1e-12, rel=0)
    assert metrics["max_drawdown"] == pytest.approx(-0.005, abs=1e-12, rel=0)
    assert metrics["hit_rate"] == pytest.approx(0.4, abs=1e-12, rel=0)
    assert metrics["turnover"] == pytest.approx(4 / 6, abs=1e-12, rel=0)
    assert metrics["total_return"] == pytest.approx(0.004974875, abs=1e-12, rel=0)


def test_a_flat_signal_has_no_sharpe_no_hit_rate_and_no_drawdown() -> None:
    metrics = trading_metrics([0, 0, 0], [0.01, -0.02, 0.03], ts=[1, 2, 3])
    assert math.isnan(metrics["sharpe"]) and math.isnan(metrics["hit_rate"])
    assert metrics["max_drawdown"] == 0.0 and metrics["turnover"] == 0.0
    constant = trading_metrics([1, 1, 1], [0.1, 0.1, 0.1], ts=[1, 2, 3])
    assert math.isnan(constant["sharpe"])  # std is zero, not 1e-18
    assert math.isnan(trading_metrics([1], [0.01], ts=[1])["sharpe"])


def test_a_first_bar_loss_counts_as_drawdown_from_the_starting_capital() -> None:
    metrics = trading_metrics([1, 1], [-0.1, 0.05], ts=[1, 2])
    assert metrics["max_drawdown"] == pytest.approx(-0.1, abs=1e-12, rel=0)


def test_trading_metrics_refuse_two_rows_of_one_symbol_at_one_time() -> None:
    with pytest.raises(ValueError, match="share one"):
        trading_metrics([1, 1], [0.01, 0.02], ts=[1, 1])
    with pytest.raises(ValueError, match="finite"):
        trading_metrics([1, np.nan], [0.01, 0.02], ts=[1, 2])


# --- reference statistics -------------------------------------------------------------------


@pytest.fixture
def reference_frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    skewed = rng.lognormal(size=3000)
    skewed[rng.choice(3000, 300, replace=False)] = np.nan
    skewed[:2] = [np.inf, -np.inf]  # not finite: counted as missing
    ticks = np.round(rng.normal(size=3000))  # few distinct values: duplicate quantiles
    return pd.DataFrame({"skewed": skewed, "ticks": ticks, "constant": 2.5})


def test_reference_edges_are_numpys_quantiles_and_counts_cover_every_value(
    reference_frame: pd.DataFrame,
) -> None:
    stats = reference_statistics(reference_frame, ["skewed", "ticks", "constant"], bins=10)
    levels = np.linspace(0, 1, 11)
    for name in ["skewed", "ticks", "constant"]:
        column, values = stats["features"][name], reference_frame[name].to_numpy()
        finite = values[np.isfinite(values)]
        assert column["quantiles"] == np.quantile(finite, levels).tolist()
        assert column["edges"] == np.unique(np.quantile(finite, levels[1:-1])).tolist()
        assert len(column["counts"]) == len(column["edges"]) + 1
        assert sum(column["counts"]) == column["summary"]["count"] == len(finite)
        assert column["counts"] == histogram_counts(values, column["edges"]).tolist()
        assert sum(column["proportions"]) == pytest.approx(1.0)
    skewed = stats["features"]["skewed"]["summary"]
    assert skewed["null_share"] == pytest.approx(302 / 3000)
    finite = reference_frame["skewed"][np.isfinite(reference_frame["skewed"])]
    assert skewed["std"] == pytest.approx(np.std(finite, ddof=1), rel=1e-12)
    assert skewed["p99"] == pytest.approx(np.quantile(finite, 0.99), rel=1e-12)
    assert stats["features"]["constant"]["counts"] == [0, 3000]  # (-inf, 2.5), [2.5, +inf)


def test_reference_bins_are_closed_on_the_left_and_open_at_both_ends() -> None:
    assert histogram_counts([-100.0, 1.0, 1.5, 2.0, 100.0, np.nan], [1.0, 2.0]).tolist() == [
        1,
        2,
        2,
    ]


def test_reference_statistics_are_strict_json_with_none_for_missing_numbers(
    reference_frame: pd.DataFrame,
) -> None:
    frame = reference_frame.assign(empty=np.nan)
    stats = reference_statistics(frame, ["skewed", "empty"], np.full(len(frame), 0.5), bins=4)
    assert json.loads(json.dumps(stats, allow_nan=False)) == stats
    assert stats["schema_version"] == 2
    empty = stats["features"]["empty"]
    assert empty["summary"] == {
        "count": 0,
        "null_share": 1.0,
        **dict.fromkeys(["mean", "std", "min", "p01", "p50", "p99", "max"]),
    }
    assert empty["edges"] == [] and empty["counts"] == [0] and empty["sample"] == []
    assert stats["prediction"]["summary"]["p50"] == 0.5


def test_the_reference_sample_is_bounded_and_deterministic_by_seed(
    reference_frame: pd.DataFrame,
) -> None:
    def sample(**kwargs: int) -> list[float]:
        return reference_statistics(reference_frame, ["skewed"], **kwargs)["features"]["skewed"][
            "sample"
        ]

    first = sample(sample_size=500, seed=1)
    assert len(first) == 500 and first == sample(sample_size=500, seed=1)
    assert first != sample(sample_size=500, seed=2)
    finite = reference_frame["skewed"][np.isfinite(reference_frame["skewed"])]
    assert set(first) <= set(finite)
    assert sample(sample_size=5000, seed=1) == finite.tolist()  # small columns: every value


def test_reference_statistics_check_their_arguments(reference_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="lacks feature column"):
        reference_statistics(reference_frame, ["nope"])
    with pytest.raises(ValueError, match="2 predictions for 3000 rows"):
        reference_statistics(reference_frame, ["ticks"], [0.1, 0.2])
    with pytest.raises(ValueError, match="bins must be"):
        reference_statistics(reference_frame, ["ticks"], bins=0)


# --- training -------------------------------------------------------------------------------


def _synthetic_rows(n_ts: int = 120, seed: int = 0) -> pd.DataFrame:
    """Two symbols, two features; the label leans on `signal`."""
    rng = np.random.default_rng(seed)
    n = 2 * n_ts
    signal = rng.normal(size=n)
    fwd_return = 0.01 * (0.8 * signal + rng.normal(size=n))
    return pd.DataFrame(
        {
            "symbol": np.tile(["AAA", "BBB"], n_ts),
            "ts": np.repeat(pd.date_range(T0, periods=n_ts, freq="D"), 2),
            "label": (fwd_return > 0).astype(int),
            "fwd_return": fwd_return,
            "signal": signal,
            "noise": rng.normal(size=n),
        }
    )


def test_missing_features_are_imputed_and_rows_without_any_are_dropped() -> None:
    rows = _synthetic_rows()
    rows.loc[[0, 1, 2], "noise"] = [np.nan, np.inf, np.nan]
    rows.loc[[5, 6], ["signal", "noise"]] = np.nan
    result = train_walk_forward(rows, ["signal", "noise"], n_folds=3, min_train=30)
    assert (result.n_rows, result.n_rows_imputed, result.n_rows_dropped) == (238, 3, 2)
    assert result.params["cv.min_train"] == 30 and result.params["model.C"] == 1.0
    assert result.metrics["accuracy"] > 0.6  # the signal is learnable


def test_training_refuses_bad_rows_and_unknown_model_params() -> None:
    rows = _synthetic_rows()
    with pytest.raises(ValueError, match="lack column"):
        train_walk_forward(rows.drop(columns="fwd_return"), ["signal"])
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        train_walk_forward(rows.assign(label=2), ["signal"])
    with pytest.raises(ValueError, match="unknown LogisticRegression parameter"):
        train_walk_forward(rows, ["signal"], model_params={"alpha": 1})
    with pytest.raises(ValueError, match="fold 1: the training rows hold a single class"):
        labels = np.r_[np.ones(100), rows["label"][100:]]  # fold 1 trains on rows 0-79
        train_walk_forward(rows.assign(label=labels), ["signal"], n_folds=2, min_train=40)


@pytest.fixture(scope="module")
def demo_result() -> tuple[TrainingResult, pd.DataFrame]:
    bars = demo_bars(symbols=("AAPL", "MSFT", "BTCUSD"), n_bars=600, seed=7)
    rows = next_bar_labels(bars).merge(compute_features(bars), on=["symbol", "ts"], how="left")
    return train_walk_forward(rows, CORE_TECHNICAL, n_folds=4, min_train=0.5), rows


def test_training_on_demo_bars_gives_finite_metrics_for_the_run(
    demo_result: tuple[TrainingResult, pd.DataFrame],
) -> None:
    result, rows = demo_result
    flat = result.flat_metrics()
    for key in ["accuracy", "roc_auc", "log_loss", "sharpe", "max_drawdown", "hit_rate"]:
        assert math.isfinite(flat[key]) and all(
            math.isfinite(flat[f"fold_{k}/{key}"]) for k in (1, 4)
        )
    assert flat["max_drawdown"] <= 0 and 0 <= flat["turnover"] <= 2
    assert result.n_rows + result.n_rows_dropped == len(rows)
    assert result.n_rows_dropped == 3  # each symbol's first bar has no feature at all
    assert [fold["fold"] for fold in result.folds] == [1, 2, 3, 4]
    assert all(f["train_end"] < f["test_start"] <= f["test_end"] for f in result.folds)
    assert sum(fold["n_test"] for fold in result.folds) == len(result.predictions)
    assert all(isinstance(v, str | int | float | bool | None) for v in result.params.values())


def test_reported_metrics_equal_scikit_learns_on_the_out_of_fold_predictions(
    demo_result: tuple[TrainingResult, pd.DataFrame],
) -> None:
    result, _ = demo_result
    oof = result.predictions
    assert oof["ts"].is_monotonic_increasing
    for fold, group in [(None, oof), *oof.groupby("fold")]:
        metrics = result.metrics if fold is None else result.folds[fold - 1]
        assert metrics["accuracy"] == accuracy_score(group["label"], group["proba"] > 0.5)
        assert metrics["roc_auc"] == roc_auc_score(group["label"], group["proba"])
        assert metrics["log_loss"] == log_loss(group["label"], group["proba"])
    expected = trading_metrics(oof["position"], oof["fwd_return"], oof["ts"], symbols=oof["symbol"])
    assert result.trading == expected


def test_the_model_survives_a_bytes_round_trip_checked_by_its_sha256(
    demo_result: tuple[TrainingResult, pd.DataFrame],
) -> None:
    result, rows = demo_result
    data = model_to_bytes(result.model)
    digest = artifact_sha256(data)
    assert len(digest) == 64 and digest == artifact_sha256(model_to_bytes(result.model))
    loaded = model_from_bytes(data, sha256=digest)
    x = rows[list(CORE_TECHNICAL)].astype(float)
    x.iloc[0, 0], x.iloc[1, 2] = np.nan, np.inf  # imputed with the training medians
    expected = result.model.predict_proba(x.replace([np.inf, -np.inf], np.nan))
    np.testing.assert_allclose(loaded.predict_proba(x), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="sha256"):
        model_from_bytes(data, sha256="0" * 64)


def test_the_artifact_is_json_numbers_not_code(
    demo_result: tuple[TrainingResult, pd.DataFrame], tmp_path: Path
) -> None:
    document = json.loads(model_to_bytes(demo_result[0].model))
    assert document["format"] == "tradingsite.logistic-pipeline"
    assert len(document["coef"]) == len(CORE_TECHNICAL) == len(document["feature_names"])
    canary = tmp_path / "canary"
    with pytest.raises(ValueError, match="not JSON"):
        model_from_bytes(pickle.dumps(_Canary(canary)))
    assert not canary.exists()
    for broken, message in (
        ({**document, "format": "pickle"}, "not a"),
        ({**document, "coef": document["coef"][:-1]}, "disagree"),
        ({**document, "scale_scale": [0.0] * len(document["coef"])}, "non-positive"),
        ({k: v for k, v in document.items() if k != "intercept"}, "missing"),
    ):
        with pytest.raises(ValueError, match=message):
            model_from_bytes(json.dumps(broken).encode())


class _Canary:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.path}",)


def test_reference_statistics_of_a_run_cover_features_and_predictions(
    demo_result: tuple[TrainingResult, pd.DataFrame],
) -> None:
    result, _ = demo_result
    stats = result.reference_statistics(sample_size=100)
    assert stats["feature_names"] == list(CORE_TECHNICAL) and stats["n_rows"] == result.n_rows
    assert stats["features"]["macd_signal"]["summary"]["null_share"] > 0  # warm-up rows kept
    prediction = stats["prediction"]
    assert prediction["summary"]["count"] == result.n_rows and len(prediction["sample"]) == 100
    assert 0 < prediction["summary"]["min"] < prediction["summary"]["max"] < 1
    json.dumps(stats, allow_nan=False)


def test_the_training_module_imports_without_django() -> None:
    repo_root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, experiments.training; "
        "sys.exit(any(m.startswith('django') for m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, env=env, check=False)
    assert result.returncode == 0
