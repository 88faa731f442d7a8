"""drift.statistics and drift.severity: values match scipy, edge cases, the severity table."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from drift.reference import autocorrelation_time, reference_statistics
from drift.severity import (
    DEFAULT_THRESHOLDS,
    Severity,
    effect_level,
    feature_severity,
    overall_severity,
    report_severity,
    thresholds_for,
    thresholds_resolve,
)
from drift.statistics import (
    DriftOptions,
    benjamini_hochberg,
    chi_square,
    drift_statistics,
    jensen_shannon,
    prediction_drift_statistics,
    psi,
    quantile_edges,
    select_test,
)

ROOT = Path(__file__).resolve().parents[2]


def finite(column: np.ndarray) -> np.ndarray:
    return column[np.isfinite(column)]


def with_nans(values: np.ndarray, share: float, seed: int) -> np.ndarray:
    out = values.copy()
    out[np.random.default_rng(seed).random(out.shape) < share] = np.nan
    return out


def names(k: int) -> list[str]:
    return [f"f{j}" for j in range(k)]


def test_the_statistics_module_imports_without_django() -> None:
    code = (
        "import sys, drift.statistics, drift.severity; "
        "sys.exit(any(m.startswith('django') for m in sys.modules))"
    )
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=False)
    assert result.returncode == 0


# --- KS, Wasserstein: equal to scipy -------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "m", "exact"),
    [
        (40, 65, True),
        (300, 299, True),
        (1000, 1000, True),
        (2000, 1500, False),
        (20000, 7000, False),
    ],
)
def test_ks_and_wasserstein_match_scipy_with_nans(n: int, m: int, exact: bool) -> None:
    rng = np.random.default_rng(n + m)
    ref = with_nans(rng.normal(size=(n, 4)), 0.05, 1)
    cur = with_nans(rng.normal(0.1, 1.2, size=(m, 4)), 0.05, 2)
    cur[:, 3] = np.round(cur[:, 3], 1)  # ties, across both samples
    ref[:, 3] = np.round(ref[:, 3], 1)
    report = drift_statistics(ref, cur, names(4))
    for j, feature in enumerate(report.features):
        a, b = finite(ref[:, j]), finite(cur[:, j])
        assert feature.ks_method == ("exact" if exact else "asymptotic")
        assert feature.ks_statistic == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-9)
        assert feature.statistic == feature.ks_statistic
        assert feature.wasserstein == pytest.approx(stats.wasserstein_distance(a, b), abs=1e-9)
        assert feature.wasserstein_normed == pytest.approx(
            feature.wasserstein / np.std(a, ddof=1), rel=1e-9
        )
        assert (feature.n_ref, feature.n_cur) == (len(a), len(b))
        if exact:
            scipy_p = stats.ks_2samp(a, b, method="exact").pvalue
            assert feature.p_value == pytest.approx(scipy_p, abs=1e-12)
        else:
            en = len(a) * len(b) / (len(a) + len(b))
            kolmogorov = stats.kstwobign.sf(feature.ks_statistic * math.sqrt(en))
            assert feature.p_value == pytest.approx(kolmogorov, rel=1e-12, abs=1e-300)
            # scipy's "asymp" is kstwo.sf(D, round(en)): another approximation, a few % away
            for method in ("asymp", "exact"):
                scipy_p = stats.ks_2samp(a, b, method=method).pvalue
                assert feature.p_value == pytest.approx(scipy_p, rel=0.1, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 60),
    st.integers(1, 60),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0, 1, 3]),
)
def test_ks_and_wasserstein_match_scipy_on_any_small_sample(
    n: int, m: int, seed: int, decimals: int
) -> None:
    rng = np.random.default_rng(seed)
    ref = np.round(rng.standard_t(3, size=(n, 2)), decimals)
    cur = np.round(rng.standard_t(3, size=(m, 2)) + rng.normal(), decimals)
    ref[rng.random(ref.shape) < 0.2] = np.nan
    cur[rng.random(cur.shape) < 0.2] = np.inf  # ±inf counts as missing too
    report = drift_statistics(ref, cur, names(2), options=DriftOptions(max_categories=0))
    for j, feature in enumerate(report.features):
        a, b = finite(ref[:, j]), finite(cur[:, j])
        if not (len(a) and len(b)):
            assert not feature.tested
            continue
        scipy_ks = stats.ks_2samp(a, b, method="exact")
        assert feature.ks_statistic == pytest.approx(scipy_ks.statistic, abs=1e-9)
        assert feature.p_value == pytest.approx(scipy_ks.pvalue, abs=1e-9)
        assert feature.wasserstein == pytest.approx(stats.wasserstein_distance(a, b), abs=1e-9)


def test_the_exact_threshold_is_an_option() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=(100, 1)), rng.normal(size=(100, 1))
    assert drift_statistics(ref, cur, ["x"]).features[0].ks_method == "exact"
    asymptotic = drift_statistics(ref, cur, ["x"], options=DriftOptions(ks_exact_max_nm=9_999))
    feature = asymptotic.features[0]
    assert feature.ks_method == "asymptotic"
    assert feature.p_value == pytest.approx(
        special.kolmogorov(feature.ks_statistic * math.sqrt(50))
    )


def test_blocks_do_not_change_the_results() -> None:
    rng = np.random.default_rng(4)
    ref = with_nans(rng.normal(size=(3000, 7)), 0.1, 5)
    cur = with_nans(rng.normal(0.05, 1.0, size=(2000, 7)), 0.1, 6)
    whole = drift_statistics(ref, cur, names(7)).as_dict()
    one_by_one = drift_statistics(ref, cur, names(7), options=DriftOptions(block_cells=1))
    assert one_by_one.as_dict() == whole


# --- PSI, Jensen–Shannon, bins ---------------------------------------------------------------


def test_psi_by_hand_on_a_tiny_example() -> None:
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.4 - 0.3) * math.log(0.4 / 0.3)
    assert psi([50, 30, 20], [40, 40, 20]) == pytest.approx(expected, rel=1e-12)
    assert psi([[50, 30, 20]], [[0.4, 0.4, 0.2]])[0] == pytest.approx(expected, rel=1e-12)


def test_psi_floors_empty_bins_at_one_in_ten_thousand() -> None:
    by_hand = (0.5 - 1e-4) * math.log(0.5 / 1e-4) + (0.5 - 1.0) * math.log(0.5 / 1.0)
    assert psi([0, 10], [5, 5]) == pytest.approx(by_hand, rel=1e-12)
    assert psi([0, 10], [0, 7]) == 0.0  # empty on both sides: no contribution
    assert np.isnan(psi([0, 0], [1, 1]))


def test_jensen_shannon_is_scipys_base_2_distance() -> None:
    rng = np.random.default_rng(7)
    ref = rng.integers(0, 50, size=(20, 9)).astype(float)
    cur = rng.integers(0, 50, size=(20, 9)).astype(float)
    ref[:, 0] = 0  # an empty bin on one side
    ours = jensen_shannon(ref, cur)
    for j in range(20):
        assert ours[j] == pytest.approx(jensenshannon(ref[j], cur[j], base=2), abs=1e-9)
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert jensen_shannon([3, 4], [3, 4]) == 0.0


def test_psi_and_js_of_the_report_use_the_reference_quantile_bins() -> None:
    rng = np.random.default_rng(8)
    ref = with_nans(rng.lognormal(size=(5000, 3)), 0.02, 9)
    cur = with_nans(rng.lognormal(0.2, 1.0, size=(4000, 3)), 0.02, 10)
    stored = reference_statistics(pd.DataFrame(ref, columns=names(3)), names(3))
    for j, feature in enumerate(drift_statistics(ref, cur, names(3)).features):
        column = stored["features"][f"f{j}"]
        assert feature.histogram["edges"] == column["edges"]  # the same bits
        assert feature.histogram["reference"] == column["counts"]
        assert sum(feature.histogram["current"]) == feature.n_cur
        p = np.array(feature.histogram["reference"]) / feature.n_ref
        q = np.array(feature.histogram["current"]) / feature.n_cur
        assert feature.jensen_shannon == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
        floor_p, floor_q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        by_hand = np.sum((floor_q - floor_p) * np.log(floor_q / floor_p))
        assert feature.psi == pytest.approx(by_hand, abs=1e-12)


def test_quantile_edges_equal_numpy_quantile_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    data = np.sort(with_nans(rng.normal(size=(6, 997)), 0.3, 12), axis=1)
    data[4:] = np.nan
    data[4, :2] = [1.0, 2.0]
    counts = np.isfinite(data).sum(axis=1)
    for bins in (4, 10, 33):
        levels = np.linspace(0, 1, bins + 1)
        for row, n, edges in zip(data, counts, quantile_edges(data, counts, bins), strict=True):
            expected = np.unique(np.quantile(row[:n], levels)[1:-1]) if n else np.empty(0)
            np.testing.assert_array_equal(edges, expected)


# --- chi-square, BH, test selection ----------------------------------------------------------


def test_chi_square_is_chi2_contingency_without_yates() -> None:
    rng = np.random.default_rng(13)
    ref = rng.integers(1, 80, size=(10, 6))
    cur = rng.integers(1, 80, size=(10, 6))
    ref[:3, 5] = cur[:3, 5] = 0  # a category absent from both: dropped
    statistic, p_value, dof = chi_square(ref, cur)
    for j in range(10):
        table = np.array([ref[j], cur[j]])
        scipy = stats.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
        assert statistic[j] == pytest.approx(scipy.statistic, rel=1e-9)
        assert p_value[j] == pytest.approx(scipy.pvalue, rel=1e-9, abs=1e-300)
        assert dof[j] == scipy.dof


def test_a_binary_chi_square_is_the_squared_two_proportion_z_test() -> None:
    statistic, p_value, _ = chi_square([300, 700], [360, 640])
    pooled = 660 / 2000
    z = (0.3 - 0.36) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 1000))
    assert statistic == pytest.approx(z**2, rel=1e-12)
    assert p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


def test_low_cardinality_columns_get_chi_square_on_their_categories() -> None:
    rng = np.random.default_rng(14)
    ref = with_nans(rng.integers(0, 6, size=(800, 2)).astype(float), 0.05, 15)
    shares = [0.3, 0.2, 0.2, 0.1, 0.1, 0.1]
    cur = with_nans(rng.choice(6, size=(600, 2), p=shares).astype(float), 0.05, 16)
    for j, feature in enumerate(drift_statistics(ref, cur, names(2)).features):
        a, b = finite(ref[:, j]), finite(cur[:, j])
        values = np.union1d(a, b)
        table = np.array([[np.sum(a == v) for v in values], [np.sum(b == v) for v in values]])
        scipy = stats.chi2_contingency(table, correction=False)
        assert (feature.kind, feature.statistic_name, feature.n_unique) == (
            "categorical",
            "chi_square",
            6,
        )
        assert feature.statistic == pytest.approx(scipy.statistic, rel=1e-9)
        assert feature.p_value == pytest.approx(scipy.pvalue, rel=1e-9, abs=1e-300)
        assert feature.histogram["categories"] == values.tolist()
        assert feature.histogram["edges"] is None
        assert [feature.histogram["reference"], feature.histogram["current"]] == table.tolist()
        p, q = table[0] / len(a), table[1] / len(b)
        assert feature.jensen_shannon == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
        assert feature.psi == pytest.approx(np.sum((q - p) * np.log(q / p)), abs=1e-12)


def test_benjamini_hochberg_equals_scipy() -> None:
    rng = np.random.default_rng(17)
    for size in (1, 2, 7, 50):
        p = rng.uniform(size=size) ** 3
        p[: size // 3] = p[0]  # ties
        expected = stats.false_discovery_control(p, method="bh")
        np.testing.assert_allclose(benjamini_hochberg(p), expected, rtol=1e-12)
    with_missing = benjamini_hochberg([0.01, np.nan, 0.04, 0.03])
    expected = stats.false_discovery_control([0.01, 0.04, 0.03], method="bh")
    assert np.isnan(with_missing[1])
    np.testing.assert_allclose(with_missing[[0, 2, 3]], expected, rtol=1e-12)


def test_report_p_values_are_corrected_across_features() -> None:
    rng = np.random.default_rng(18)
    ref = rng.normal(size=(500, 6))
    cur = rng.normal(np.linspace(0, 0.3, 6), 1.0, size=(400, 6))
    report = drift_statistics(ref, cur, names(6))
    p = [feature.p_value for feature in report.features]
    corrected = [feature.p_value_corrected for feature in report.features]
    np.testing.assert_allclose(corrected, stats.false_discovery_control(p, method="bh"))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"n_unique": 2, "n_ref": 10**6, "n_cur": 10**6}, ("categorical", "chi_square", None)),
        ({"n_unique": 20, "n_ref": 30, "n_cur": 10}, ("categorical", "chi_square", None)),
        ({"n_unique": 16, "n_ref": 8, "n_cur": 8}, ("numeric", "ks", "exact")),  # all distinct
        ({"n_unique": 500, "n_ref": 1000, "n_cur": 1000}, ("numeric", "ks", "exact")),
        ({"n_unique": 21, "n_ref": 1000, "n_cur": 1001}, ("numeric", "ks", "asymptotic")),
        ({"n_unique": 10**4, "n_ref": 10**4, "n_cur": 10**4}, ("numeric", "ks", "asymptotic")),
        (
            {"n_unique": 10**4, "n_ref": 50, "n_cur": 50, "categorical": True},
            ("categorical", "chi_square", None),
        ),
    ],
)
def test_select_test_by_type_and_size(kwargs: dict, expected: tuple) -> None:
    choice = select_test(**kwargs)
    assert (choice.kind, choice.test, choice.ks_method) == expected
    effect = "wasserstein_normed" if choice.kind == "numeric" else "jensen_shannon"
    assert choice.effects == ("psi", effect)


# --- edge cases ----------------------------------------------------------------------------


def test_identical_constant_columns_show_no_drift() -> None:
    report = drift_statistics(np.full((100, 1), 3.0), np.full((80, 1), 3.0), ["c"])
    feature = report.features[0]
    assert (feature.kind, feature.n_unique) == ("categorical", 1)
    assert (feature.statistic, feature.p_value, feature.ks_statistic) == (0.0, 1.0, 0.0)
    assert (feature.psi, feature.jensen_shannon, feature.wasserstein) == (0.0, 0.0, 0.0)
    assert feature.wasserstein_normed == 0.0
    assert feature.severity == Severity.NONE


def test_a_constant_column_that_moves_is_high_even_beyond_the_reference_bins() -> None:
    report = drift_statistics(np.full((200, 1), 3.0), np.full((150, 1), 4.0), ["c"])
    feature = report.features[0]
    assert feature.histogram["categories"] == [3.0, 4.0]  # not the bin [3, +inf) for both
    assert feature.psi == pytest.approx(2 * (1 - 1e-4) * math.log(1e4))
    assert feature.jensen_shannon == 1.0
    assert feature.wasserstein == 1.0
    assert feature.wasserstein_normed == math.inf
    assert feature.p_value < 1e-60
    assert feature.severity == Severity.HIGH
    assert feature.as_dict()["wasserstein_normed"] is None  # JSON has no infinity


def test_all_nan_columns_are_untested_and_do_not_count() -> None:
    rng = np.random.default_rng(19)
    ref, cur = rng.normal(size=(300, 3)), rng.normal(size=(200, 3))
    ref[:, 1] = np.nan
    cur[:, 2] = np.nan
    report = drift_statistics(ref, cur, names(3))
    healthy, no_reference, no_current = report.features
    assert healthy.tested and healthy.p_value > 0
    for feature in (no_reference, no_current):
        assert not feature.tested
        assert math.isnan(feature.p_value) and math.isnan(feature.p_value_corrected)
        assert math.isnan(feature.psi) and math.isnan(feature.ks_statistic)
        assert feature.severity == Severity.NONE
    assert (no_reference.n_ref, no_reference.null_share_ref) == (0, 1.0)
    assert (no_current.n_cur, no_current.null_share_cur) == (0, 1.0)
    assert report.summary.n_tested == 1
    json.dumps(report.as_dict(), allow_nan=False)


def test_a_stored_reference_gives_the_array_results_when_its_sample_holds_every_value() -> None:
    rng = np.random.default_rng(20)
    frame = pd.DataFrame(with_nans(rng.normal(size=(1500, 3)), 0.05, 21), columns=names(3))
    frame["f2"] = rng.integers(0, 4, size=1500)
    cur = with_nans(rng.normal(0.1, 1.0, size=(900, 3)), 0.05, 22)
    cur[:, 2] = rng.integers(0, 5, size=900)
    stored = reference_statistics(frame, names(3), sample_size=5000)
    from_array = drift_statistics(frame.to_numpy(), cur, names(3)).as_dict()
    for reference in (stored, stored["features"], [stored["features"][n] for n in names(3)]):
        from_store = drift_statistics(reference, cur, names(3)).as_dict()
        for ours, theirs in zip(from_store["features"], from_array["features"], strict=True):
            assert ours.keys() == theirs.keys()
            for key, value in theirs.items():
                if isinstance(value, float):
                    assert ours[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
                else:
                    assert ours[key] == value, key


def test_a_stored_reference_tests_on_its_sample_and_bins_on_its_counts() -> None:
    rng = np.random.default_rng(23)
    frame = pd.DataFrame(rng.normal(size=(20000, 1)), columns=["x"])
    stored = reference_statistics(frame, ["x"], sample_size=2000)
    column = stored["features"]["x"]
    cur = rng.normal(size=(3000, 1))
    feature = drift_statistics(stored, cur, ["x"]).features[0]
    assert (feature.n_ref, feature.n_ref_sample, feature.n_cur) == (20000, 2000, 3000)
    assert feature.histogram["reference"] == column["counts"]
    sample = np.array(column["sample"])
    assert feature.ks_statistic == pytest.approx(stats.ks_2samp(sample, cur[:, 0]).statistic)
    assert feature.wasserstein == pytest.approx(stats.wasserstein_distance(sample, cur[:, 0]))
    assert feature.wasserstein_normed == pytest.approx(
        feature.wasserstein / column["summary"]["std"]
    )


def test_bad_inputs_are_refused() -> None:
    good = np.zeros((5, 2))
    with pytest.raises(ValueError, match="rows × 2 features"):
        drift_statistics(good, np.zeros((5, 3)), names(2))
    with pytest.raises(ValueError, match="lacks feature"):
        drift_statistics({"f0": {}}, good, names(2))
    with pytest.raises(ValueError, match="schema"):
        drift_statistics({"schema_version": 99, "features": {}}, good, names(2))


# --- severity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, Severity.NONE),
        (0.0999, Severity.NONE),
        (0.1, Severity.LOW),
        (0.1999, Severity.LOW),
        (0.2, Severity.MEDIUM),
        (0.2499, Severity.MEDIUM),
        (0.25, Severity.HIGH),
        (7.0, Severity.HIGH),
        (math.inf, Severity.HIGH),
        (math.nan, Severity.NONE),
    ],
)
def test_psi_levels_follow_the_default_table(value: float, expected: Severity) -> None:
    assert effect_level(value, DEFAULT_THRESHOLDS["psi"]) == expected


@pytest.mark.parametrize(
    ("p_corrected", "psi_value", "normed", "expected"),
    [
        (0.001, 0.30, 0.0, Severity.HIGH),  # significant, big PSI
        (0.049, 0.21, 0.0, Severity.MEDIUM),
        (0.001, 0.05, 0.12, Severity.LOW),  # the worse of the two effects counts
        (0.001, 0.05, 0.30, Severity.MEDIUM),
        (0.001, 0.05, 0.05, Severity.NONE),  # significant but negligible: big-sample noise
        (0.050, 0.90, 0.90, Severity.NONE),  # huge effect, not significant: small-sample noise
        (math.nan, 0.90, 0.90, Severity.NONE),
    ],
)
def test_feature_severity_needs_significance_and_effect(
    p_corrected: float, psi_value: float, normed: float, expected: Severity
) -> None:
    effects = {"psi": psi_value, "wasserstein_normed": normed}
    thresholds = thresholds_for(thresholds_resolve(), "x")
    assert (
        feature_severity(p_value_corrected=p_corrected, effects=effects, thresholds=thresholds)
        == expected
    )


def test_thresholds_can_be_overridden_per_view_and_per_feature() -> None:
    resolved = thresholds_resolve(
        {"psi": (0.2, 0.3, 0.4), "alpha": 0.01, "features": {"rsi": {"psi": (0.5, 0.6, 0.7)}}}
    )
    effects = {"psi": 0.35}
    assert thresholds_for(resolved, "ret")["alpha"] == 0.01
    level = feature_severity(
        p_value_corrected=0.005, effects=effects, thresholds=thresholds_for(resolved, "ret")
    )
    assert level == Severity.MEDIUM
    level = feature_severity(
        p_value_corrected=0.005, effects=effects, thresholds=thresholds_for(resolved, "rsi")
    )
    assert level == Severity.NONE
    assert thresholds_resolve({"jensen_shannon": None})["jensen_shannon"] is None
    for bad in ({"psi": (0.3, 0.2, 0.1)}, {"alpha": 0}, {"pis": (1, 2, 3)}):
        with pytest.raises(ValueError):
            thresholds_resolve(bad)


@pytest.mark.parametrize(
    ("levels", "expected", "share"),
    [
        ([Severity.NONE] * 4, Severity.NONE, 0.0),
        ([Severity.LOW, Severity.NONE, Severity.NONE, Severity.NONE], Severity.LOW, 0.25),
        ([Severity.MEDIUM, Severity.LOW, Severity.NONE, Severity.NONE], Severity.HIGH, 0.5),
        ([Severity.HIGH, Severity.NONE, Severity.NONE, Severity.NONE], Severity.HIGH, 0.25),
        ([Severity.MEDIUM, Severity.NONE, Severity.NONE], Severity.MEDIUM, 1 / 3),
    ],
)
def test_report_severity_is_the_worst_feature_or_high_at_half_drifted(
    levels: list[Severity], expected: Severity, share: float
) -> None:
    summary = report_severity(levels, [True] * len(levels), drift_share=0.5)
    assert (summary.severity, summary.drift_share) == (expected, pytest.approx(share))
    untested = report_severity([Severity.HIGH, Severity.NONE], [False, True], drift_share=0.5)
    assert (untested.severity, untested.n_tested) == (Severity.NONE, 1)


def test_a_regime_shift_is_high_and_the_same_regime_is_none_or_low() -> None:
    rng = np.random.default_rng(24)
    k = 12

    def window(n: int, vol: float, drift: float) -> np.ndarray:
        returns = rng.standard_t(4, size=(n, k // 2)) * vol + drift
        rank = rng.integers(0, 10, size=(n, k // 2)) + (drift > 0)  # low-cardinality features
        return np.hstack([returns, rank])

    reference = window(20000, vol=0.01, drift=0.0)
    same = drift_statistics(reference, window(3000, vol=0.01, drift=0.0), names(k))
    shifted = drift_statistics(reference, window(3000, vol=0.025, drift=0.01), names(k))
    assert same.severity in (Severity.NONE, Severity.LOW)
    assert all(f.severity in (Severity.NONE, Severity.LOW) for f in same.features)
    assert shifted.severity == Severity.HIGH
    assert all(f.severity == Severity.HIGH for f in shifted.features)
    assert shifted.summary.drift_share == 1.0


# --- autocorrelation: effective sample sizes -------------------------------------------------


def ar1(rng: np.random.Generator, phi: float, n: int, series: int) -> np.ndarray:
    """`series` independent stationary AR(1) paths of length n, stacked (series-major)."""
    out = np.empty((series, n))
    out[:, 0] = rng.normal(size=series) / math.sqrt(1 - phi**2)
    shocks = rng.normal(size=(series, n))
    for t in range(1, n):
        out[:, t] = phi * out[:, t - 1] + shocks[:, t]
    return out.ravel()


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8, 0.95])
def test_autocorrelation_time_of_ar1_is_the_textbook_one_plus_phi_over_one_minus_phi(
    phi: float,
) -> None:
    # τ = Σ_k ρ_k over all k = (1 + φ) / (1 − φ) for AR(1); within 12 % on 5 × 20,000 values.
    values = ar1(np.random.default_rng(31), phi, 20_000, 5)
    ids = np.repeat(np.arange(5), 20_000)
    expected = (1 + phi) / (1 - phi)
    assert autocorrelation_time(values, ids) == pytest.approx(expected, rel=0.12, abs=0.1)


def test_autocorrelation_time_pools_series_and_never_joins_them() -> None:
    rng = np.random.default_rng(32)
    # Two white-noise series at very different levels: joined end to end they would look
    # strongly autocorrelated; each centred on its own mean they are independent.
    values = np.concatenate([rng.normal(0, 1, 2000), rng.normal(50, 1, 2000)])
    ids = np.array(["AAA"] * 2000 + ["BBB"] * 2000)
    assert autocorrelation_time(values, ids) == pytest.approx(1.0, abs=0.15)
    assert autocorrelation_time(values, np.zeros(4000)) > 20
    # interleaved rows (sorted by time, then symbol) are split by series id, order kept
    shuffled = np.empty(4000)
    shuffled[0::2], shuffled[1::2] = values[:2000], values[2000:]
    assert autocorrelation_time(shuffled, np.tile(["AAA", "BBB"], 2000)) == pytest.approx(
        autocorrelation_time(values, ids)
    )


def test_autocorrelation_time_is_one_when_it_cannot_be_estimated() -> None:
    assert autocorrelation_time([1.0, 2.0, 3.0], [0, 0, 0]) == 1.0  # too short
    assert autocorrelation_time(np.full(100, 3.0), np.zeros(100)) == 1.0  # constant
    assert autocorrelation_time([np.nan] * 50, np.zeros(50)) == 1.0
    with pytest.raises(ValueError, match="series ids"):
        autocorrelation_time([1.0, 2.0], [0])


def test_adjusted_p_values_use_effective_sample_sizes() -> None:
    rng = np.random.default_rng(33)
    n, m, phi = 4000, 600, 0.8
    ref = ar1(rng, phi, n // 4, 4)[:, None]
    cur = (ar1(rng, phi, m // 4, 4) + 0.4)[:, None]
    plain = drift_statistics(ref, cur, ["x"]).features[0]
    assert plain.autocorrelation_time == 1.0
    assert plain.p_value_adjusted == plain.p_value  # no series: rows taken as independent
    assert plain.n_cur_effective == m
    adjusted = drift_statistics(
        ref, cur, ["x"], reference_series=np.repeat(range(4), n // 4),
        current_series=np.repeat(range(4), m // 4),
    ).features[0]  # fmt: skip
    tau = adjusted.autocorrelation_time
    assert tau == pytest.approx(9.0, rel=0.25)
    assert adjusted.n_ref_effective == pytest.approx(n / tau)
    assert adjusted.n_cur_effective == pytest.approx(m / tau)
    en = (n / tau) * (m / tau) / (n / tau + m / tau)
    expected = stats.kstwo.sf(adjusted.ks_statistic, round(en))
    assert adjusted.p_value_adjusted == pytest.approx(expected, rel=1e-12)
    assert adjusted.p_value == pytest.approx(plain.p_value, rel=1e-12)  # scipy's, unchanged
    assert adjusted.p_value_adjusted > plain.p_value


def test_a_stored_reference_carries_tau_and_samples_count_as_nearly_independent() -> None:
    rng = np.random.default_rng(34)
    values = ar1(rng, 0.9, 5000, 4)
    frame = pd.DataFrame({"x": values})
    ref = reference_statistics(frame, ["x"], series=np.repeat(range(4), 5000), sample_size=500)
    tau = ref["features"]["x"]["autocorrelation_time"]
    assert tau == pytest.approx(19.0, rel=0.25)
    cur = ar1(rng, 0.9, 100, 4)[:, None]
    feature = drift_statistics(ref, cur, ["x"]).features[0]
    assert feature.autocorrelation_time == pytest.approx(tau)
    # 500 rows drawn at random from 20,000: far apart, so nearly independent
    assert feature.n_ref_effective == pytest.approx(1 / (1 / 500 + (tau - 1) / 20_000))
    assert feature.n_cur_effective == pytest.approx(400 / tau)
    # a reference without series (schema 1 has none) leaves τ to the current window's series
    del ref["features"]["x"]["autocorrelation_time"]
    ref["schema_version"] = 1
    own = drift_statistics(ref, cur, ["x"], current_series=np.repeat(range(4), 100))
    assert own.features[0].autocorrelation_time == pytest.approx(
        autocorrelation_time(cur[:, 0], np.repeat(range(4), 100))
    )


def _demo_scan(seed: int, regime: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """What a scan of the demo's last DRIFT_WINDOW_BARS bars sees: reference from a model
    trained on the bars before the late regime, current window the last 60 bars per symbol;
    the features' report and the prediction drift of the model run on the window."""
    import features.demo as demo
    from experiments.training import next_bar_labels, train_walk_forward
    from features.transforms import CORE_TECHNICAL, compute_features

    if not regime:
        monkeypatch.setattr(demo, "LATE_VOL_MULTIPLIER", 1.0)
        monkeypatch.setattr(demo, "LATE_DRIFT_SHIFT_SHARPE", 0.0)
        monkeypatch.setattr(demo, "LATE_VOLUME_MULTIPLIER", 1.0)
    n_bars = 1500
    bars = demo.demo_bars(n_bars=n_bars, seed=seed)
    features = compute_features(bars).sort_values(["symbol", "ts"])
    features["position"] = features.groupby("symbol").cumcount()
    names = list(CORE_TECHNICAL)
    rows = next_bar_labels(bars).merge(features, on=["symbol", "ts"])
    train = rows[(rows.position >= 60) & (rows.position < demo.late_regime_first_bar(n_bars))]
    result = train_walk_forward(train, names, n_folds=3)
    reference = json.loads(json.dumps(result.reference_statistics(sample_size=5000)))
    window = features[features.position >= n_bars - 60]
    series = window["symbol"].to_numpy()
    prediction = prediction_drift_statistics(
        reference, result.predict_proba(window), current_series=series
    )
    return drift_statistics(reference, window[names].to_numpy(), names), prediction


@pytest.mark.parametrize("seed", [3, 11])
def test_the_demo_regime_change_is_medium_or_high_and_unchanged_data_none_or_low(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before effective sample sizes, every unchanged window here graded HIGH (69-75 % drifted).
    unchanged, unchanged_prediction = _demo_scan(seed, regime=False, monkeypatch=monkeypatch)
    assert unchanged.severity in (Severity.NONE, Severity.LOW), unchanged.as_dict()["features"]
    # the report's severity, predictions included (drift.severity.overall_severity)
    assert unchanged_prediction.tested and unchanged_prediction.n_cur == 300
    assert overall_severity(unchanged.severity, unchanged_prediction.severity) in (
        Severity.NONE,
        Severity.LOW,
    ), unchanged_prediction
    monkeypatch.undo()
    changed, changed_prediction = _demo_scan(seed, regime=True, monkeypatch=monkeypatch)
    assert changed.severity in (Severity.MEDIUM, Severity.HIGH)
    assert overall_severity(changed.severity, changed_prediction.severity) in (
        Severity.MEDIUM,
        Severity.HIGH,
    )
    drifted = {f.name for f in changed.features if f.drifted}
    # Volatility doubled: 1-bar returns (τ ≈ 1: 300 rows weigh as 300) show it first; the slow
    # volatility features (τ 20-90 bars) hold only a handful of independent values in 60 bars.
    assert {"ret_1", "log_ret_1"} <= drifted
