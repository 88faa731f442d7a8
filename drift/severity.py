"""Drift severity NONE / LOW / MEDIUM / HIGH per feature and per report, and the graded results
(`FeatureDrift`, `DriftReport`) that `drift.statistics.drift_statistics` returns. Pure, no Django.

The rule, per feature (`feature_severity`):

1. A feature that could not be tested (no finite value in the reference or the current window)
   is NONE and counts neither as drifted nor in the share's denominator.
2. Each effect size the column's test choice lists (numeric: PSI and normed Wasserstein;
   categorical: PSI and Jensen–Shannon, see `drift.statistics.select_test`) gets a level from
   its three cut points (low, medium, high): value < low → NONE, low ≤ value < medium → LOW,
   medium ≤ value < high → MEDIUM, value ≥ high → HIGH. The feature's effect level is the
   highest of these (an effect whose thresholds are None is not graded).
3. severity = that level when the Benjamini–Hochberg corrected p-value (of the
   autocorrelation-adjusted p-values, see drift.statistics) is < `alpha`, else NONE.
   So a feature is *drifted* (severity ≥ LOW) only when the corrected p-value < alpha AND at
   least one effect size reaches its low cut point: small samples need the test, large samples
   (where any tiny shift is "significant") need the effect size.

Default cut points (`DEFAULT_THRESHOLDS`, override any key with a dict):

| key                | LOW ≥ | MEDIUM ≥ | HIGH ≥ | why                                        |
|--------------------|-------|----------|--------|--------------------------------------------|
| psi                | 0.10  | 0.20     | 0.25   | the usual PSI bands (0.1 watch, 0.25 act)  |
| wasserstein_normed | 0.10  | 0.25     | 0.50   | shift in reference stds; Evidently cuts 0.1 |
| jensen_shannon     | 0.10  | 0.20     | 0.30   | base 2, in [0, 1]; Evidently cuts at 0.1   |

alpha = 0.05 (on the BH-corrected p-value); drift_share = 0.5 (see below, Evidently's default).

Overall report (`report_severity`): the highest feature severity, raised to HIGH when the share
of drifted features among the tested ones is ≥ `drift_share` (Evidently's "dataset drift").
Per-feature overrides: `{"features": {"rsi_14": {"psi": (0.2, 0.3, 0.4)}}}` inside the dict.

Prediction drift (the distribution of the predicted P(up), `drift.statistics.
prediction_drift_statistics`) is graded by the same rule as one numeric feature, with the
cut points of the name "prediction" (overridable like a feature's). It does not count in the
share of drifted features, which is a share of *features*; the report's severity
(`overall_severity`) is the higher of the features' severity and the prediction's. So a model
whose outputs moved is flagged even when no single input moved enough, and unchanged inputs
with unchanged outputs stay NONE/LOW. A report whose prediction drift could not be computed
(no prediction column in the reference, no loadable model) is graded on its features alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

import numpy as np

EFFECTS = ("psi", "wasserstein_normed", "jensen_shannon")
DEFAULT_THRESHOLDS: dict[str, Any] = {
    "alpha": 0.05,
    "drift_share": 0.5,
    "psi": (0.1, 0.2, 0.25),
    "wasserstein_normed": (0.1, 0.25, 0.5),
    "jensen_shannon": (0.1, 0.2, 0.3),
}


class Severity(StrEnum):
    NONE = "NONE"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)


_ORDER = (Severity.NONE, Severity.LOW, Severity.MEDIUM, Severity.HIGH)


@dataclass(frozen=True)
class ReportSeverity:
    severity: Severity
    n_tested: int
    n_drifted: int
    drift_share: float  # n_drifted / n_tested, 0.0 when nothing was tested


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str
    statistic_name: str  # the test that gives the p-value: "ks" | "chi_square"
    ks_method: str | None  # "exact" | "asymptotic" when statistic_name is "ks"
    statistic: float  # KS D or Pearson chi-square
    p_value: float  # the test's own (i.i.d.) p-value: scipy's
    p_value_adjusted: float  # on effective sample sizes (autocorrelation), see drift.statistics
    p_value_corrected: float  # Benjamini–Hochberg of p_value_adjusted over the tested features
    ks_statistic: float
    psi: float
    jensen_shannon: float
    wasserstein: float
    wasserstein_normed: float
    n_ref: int  # finite reference values behind the bins (the whole reference)
    n_ref_sample: int  # behind KS, Wasserstein, chi-square (the stored sample, or n_ref)
    n_cur: int
    null_share_ref: float
    null_share_cur: float
    n_unique: int  # distinct finite values in reference (sample) and current together
    autocorrelation_time: float  # τ ≥ 1 behind the effective sizes (1: rows independent)
    n_ref_effective: float
    n_cur_effective: float
    severity: Severity
    histogram: dict[str, list[Any] | None] = field(repr=False)  # edges|categories, counts

    @property
    def tested(self) -> bool:
        return self.n_ref > 0 and self.n_ref_sample > 0 and self.n_cur > 0

    @property
    def drifted(self) -> bool:
        return self.severity != Severity.NONE

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN and ±inf become None, severity its name."""
        out = {f.name: _json_value(getattr(self, f.name)) for f in fields(self)}
        return {**out, "drifted": self.drifted, "tested": self.tested}


@dataclass(frozen=True)
class DriftReport:
    features: list[FeatureDrift]
    summary: ReportSeverity
    thresholds: dict[str, Any]

    @property
    def severity(self) -> Severity:
        return self.summary.severity

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": str(self.summary.severity),
            "n_tested": self.summary.n_tested,
            "n_drifted": self.summary.n_drifted,
            "drift_share": self.summary.drift_share,
            "thresholds": _json_value(self.thresholds),
            "features": [feature.as_dict() for feature in self.features],
        }


def thresholds_resolve(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """DEFAULT_THRESHOLDS with `overrides` applied and checked (cut points ascending, in [0, ∞);
    alpha and drift_share in (0, 1]). Per-feature overrides stay under "features"."""
    merged: dict[str, Any] = {**DEFAULT_THRESHOLDS, "features": {}}
    for key, value in (overrides or {}).items():
        if key not in merged:
            raise ValueError(f"unknown drift threshold {key!r}")
        merged[key] = value
    _check_thresholds(merged)
    features = {}
    for name, per_feature in merged["features"].items():
        own = {key: value for key, value in merged.items() if key != "features"}
        for key, value in per_feature.items():
            if key not in EFFECTS and key != "alpha":
                raise ValueError(f"unknown drift threshold {key!r} for feature {name!r}")
            own[key] = value
        _check_thresholds(own)
        features[name] = per_feature
    merged["features"] = features
    return merged


def thresholds_for(thresholds: Mapping[str, Any], feature: str) -> dict[str, Any]:
    """The resolved thresholds of one feature (its own overrides win)."""
    own = {key: value for key, value in thresholds.items() if key != "features"}
    own.update(thresholds.get("features", {}).get(feature, {}))
    return own


def effect_level(value: float, cuts: Sequence[float] | None) -> Severity:
    """NONE below cuts[0], LOW from cuts[0], MEDIUM from cuts[1], HIGH from cuts[2] (inclusive).
    NaN (not computable) is NONE; +inf is HIGH."""
    if cuts is None or math.isnan(value):
        return Severity.NONE
    return _ORDER[sum(value >= cut for cut in cuts)]


def feature_severity(
    *,
    p_value_corrected: float,
    effects: Mapping[str, float],
    thresholds: Mapping[str, Any],
) -> Severity:
    """Highest effect level among `effects`, if the corrected p-value is below alpha; else NONE.
    `thresholds` holds one feature's cut points (see `thresholds_for`)."""
    if math.isnan(p_value_corrected) or not p_value_corrected < thresholds["alpha"]:
        return Severity.NONE
    levels = [effect_level(value, thresholds.get(name)) for name, value in effects.items()]
    return max(levels, key=lambda level: level.rank, default=Severity.NONE)


def report_severity(
    severities: Sequence[Severity], tested: Sequence[bool], *, drift_share: float
) -> ReportSeverity:
    """Overall severity: the worst tested feature's, HIGH once drifted share ≥ `drift_share`."""
    levels = [level for level, was_tested in zip(severities, tested, strict=True) if was_tested]
    n_drifted = sum(level != Severity.NONE for level in levels)
    share = n_drifted / len(levels) if levels else 0.0
    worst = max(levels, key=lambda level: level.rank, default=Severity.NONE)
    if n_drifted and share >= drift_share:
        worst = Severity.HIGH
    return ReportSeverity(worst, len(levels), n_drifted, share)


def overall_severity(features: Severity | str, prediction: Severity | str | None) -> Severity:
    """A report's severity: its features' (worst feature, HIGH at drift_share), raised to the
    prediction drift's when that is higher; None (not computed) leaves the features'."""
    levels = [Severity(features)] + ([Severity(prediction)] if prediction else [])
    return max(levels, key=lambda level: level.rank)


def drift_report_grade(
    rows: Sequence[dict[str, Any]], p_corrected: Sequence[float], thresholds: Mapping[str, Any]
) -> DriftReport:
    """Grade ungraded feature rows (FeatureDrift fields less severity and corrected p-value,
    plus "effects": the effect names that grade it) into the report."""
    features = []
    for row, p_value in zip(rows, p_corrected, strict=True):
        own = thresholds_for(thresholds, row["name"])
        fields_ = {key: value for key, value in row.items() if key != "effects"}
        effects = {name: row[name] for name in row["effects"]}
        level = feature_severity(p_value_corrected=float(p_value), effects=effects, thresholds=own)
        features.append(FeatureDrift(**fields_, p_value_corrected=float(p_value), severity=level))
    summary = report_severity(
        [feature.severity for feature in features],
        [feature.tested for feature in features],
        drift_share=thresholds["drift_share"],
    )
    return DriftReport(features, summary, dict(thresholds))


def _check_thresholds(values: Mapping[str, Any]) -> None:
    for key in ("alpha", "drift_share"):
        if not 0.0 < float(values[key]) <= 1.0:
            raise ValueError(f"{key} must be in (0, 1], got {values[key]!r}")
    for key in EFFECTS:
        cuts = values.get(key)
        if cuts is None:
            continue
        cuts = [float(cut) for cut in cuts]
        if len(cuts) != 3 or cuts[0] < 0 or not cuts[0] <= cuts[1] <= cuts[2]:
            raise ValueError(f"{key} thresholds must be three ascending values >= 0, got {cuts}")


def _json_value(value: Any) -> Any:
    if isinstance(value, Severity):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
