"""Each rule, pure (over PromotionFacts), then over real rows; and the policy file loader."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from drift.models import DriftReport
from drift.selectors import open_high_drift
from experiments.storage import blob_path
from features.models import MaterializationJob
from registry.models import ModelVersion, Stage
from registry.policy import (
    DEFAULT_POLICY_FILE,
    PolicyError,
    PromotionFacts,
    Rule,
    policy_active,
    policy_evaluate,
    policy_read,
)
from registry.services import policy_check

FACTS = PromotionFacts(version_label="m v2", metrics={"accuracy": 0.6, "roc_auc": 0.55})


def one(kind: str, facts: PromotionFacts = FACTS, **params: Any) -> tuple[bool, str]:
    [result] = policy_evaluate((Rule(kind, params),), facts)
    assert result.rule == kind
    return result.passed, result.reason


def with_(**changes: Any) -> PromotionFacts:
    return PromotionFacts(**{**FACTS.__dict__, **changes})


def test_min_metric_passes_at_or_above_the_value() -> None:
    assert one("min_metric", metric="accuracy", value=0.6)[0]
    passed, reason = one("min_metric", metric="accuracy", value=0.61)
    assert not passed and "below the minimum 0.61" in reason


def test_min_metric_fails_on_a_missing_or_nan_metric() -> None:
    assert not one("min_metric", with_(metrics={"accuracy": None}), metric="accuracy", value=0)[0]
    passed, reason = one("min_metric", metric="sharpe", value=0)
    assert not passed and "no value for metric 'sharpe'" in reason


def test_beats_production_passes_without_a_production_version() -> None:
    passed, reason = one("beats_production", metric="roc_auc")
    assert passed and "no version is in Production" in reason


def test_beats_production_compares_in_the_chosen_direction_with_a_margin() -> None:
    prod = with_(production_label="m v1", production_metrics={"roc_auc": 0.53, "log_loss": 0.6})
    assert one("beats_production", prod, metric="roc_auc")[0]
    assert not one("beats_production", prod, metric="roc_auc", min_margin=0.05)[0]
    tie = with_(production_label="m v1", production_metrics={"roc_auc": 0.55})
    assert not one("beats_production", tie, metric="roc_auc")[0]  # a tie does not beat
    lower = with_(
        metrics={"log_loss": 0.5},
        production_label="m v1",
        production_metrics=prod.production_metrics,
    )
    assert one("beats_production", lower, metric="log_loss", direction="lower")[0]
    assert not one("beats_production", lower, metric="log_loss", direction="higher")[0]


def test_no_open_high_drift() -> None:
    assert one("no_open_high_drift")[0]
    passed, reason = one("no_open_high_drift", with_(open_high_drift="report 3"))
    assert not passed and "report 3" in reason


def test_feature_quality_min() -> None:
    good = with_(feature_view_label="v v1", feature_quality=85.0)
    assert one("feature_quality_min", good, threshold=80)[0]
    assert not one("feature_quality_min", good, threshold=90)[0]
    assert "no feature view" in one("feature_quality_min", threshold=1)[1]
    nojob = with_(feature_view_label="v v1")
    assert "no succeeded materialization" in one("feature_quality_min", nojob, threshold=1)[1]


def test_artifact_hash_verifies_and_required_permission() -> None:
    assert one("artifact_hash_verifies", with_(artifact_verifies=True))[0]
    assert not one("artifact_hash_verifies", with_(artifact_verifies=False))[0]
    held = with_(actor_permissions=frozenset({"registry.promote_modelversion"}))
    assert one("required_permission", held)[0]
    assert not one("required_permission")[0]
    assert not one("required_permission", held, permission="registry.other")[0]


# --- the rules over real rows ------------------------------------------------------------------


@pytest.fixture
def policy_file(settings: Any, tmp_path: Path) -> Callable[..., Path]:
    def write(*items: dict[str, Any]) -> Path:
        path = tmp_path / f"policy{len(list(tmp_path.glob('policy*')))}.json"
        path.write_text(json.dumps({"version": 1, "stages": {"Production": list(items)}}))
        settings.PROMOTION_POLICY_FILE = str(path)
        return path

    return write


@pytest.mark.django_db
def test_open_high_drift_is_the_latest_report_only(
    make_version: Callable[..., ModelVersion],
) -> None:
    version = make_version()
    now = timezone.now()

    def report(days: int, severity: str) -> DriftReport:
        return DriftReport.objects.create(
            model_version=version, window_start=now - timedelta(days=days + 1),
            window_end=now - timedelta(days=days), severity=severity, share_drifted=0.5,
        )  # fmt: skip

    assert open_high_drift(model_version=version) is None
    high = report(2, "HIGH")
    assert open_high_drift(model_version=version) == high
    report(1, "LOW")
    assert open_high_drift(model_version=version) is None


@pytest.mark.django_db
def test_the_rules_read_the_database(
    make_version: Callable[..., ModelVersion],
    policy_file: Callable[..., Path],
    promoter: Any,
    user: Any,
) -> None:
    policy_file(
        {"rule": "no_open_high_drift"},
        {"rule": "feature_quality_min", "threshold": 90},
        {"rule": "artifact_hash_verifies"},
        {"rule": "required_permission"},
        {"rule": "beats_production", "metric": "roc_auc"},
    )
    old = make_version(metrics={"accuracy": 0.6, "roc_auc": 0.7})
    ModelVersion.objects.filter(pk=old.pk).update(stage=Stage.PRODUCTION)
    version = make_version(metrics={"accuracy": 0.6, "roc_auc": 0.6})
    check = policy_check(version=version, to_stage=Stage.PRODUCTION, actor=promoter)
    assert [r.passed for r in check.results] == [True, True, True, True, False]
    assert "of direction v1" in check.results[4].reason

    now = timezone.now()
    DriftReport.objects.create(
        model_version=version, window_start=now - timedelta(days=1), window_end=now,
        severity="HIGH", share_drifted=0.8,
    )  # fmt: skip
    MaterializationJob.objects.create(
        view=version.feature_view, status=MaterializationJob.Status.SUCCEEDED, quality={"score": 70}
    )
    path = blob_path(version.artifact_sha256)
    path.chmod(0o644)
    path.write_bytes(b"swapped")
    check = policy_check(version=version, to_stage=Stage.PRODUCTION, actor=user)
    assert [r.passed for r in check.results] == [False] * 5
    assert "80% of features drifted" in check.results[0].reason
    assert "quality 70 is below 90" in check.results[1].reason
    assert "lacks the permission registry.promote_modelversion" in check.results[3].reason


# --- the policy file -----------------------------------------------------------------------------


def test_the_shipped_default_parses_and_covers_every_stage() -> None:
    policy = policy_read(DEFAULT_POLICY_FILE)
    assert set(policy.stages) == set(Stage.values)
    kinds = {rule.kind for rule in policy.rules_for(Stage.PRODUCTION)}
    assert kinds == {
        "min_metric", "beats_production", "no_open_high_drift", "feature_quality_min",
        "artifact_hash_verifies", "required_permission",
    }  # fmt: skip
    assert "beats_production" not in {r.kind for r in policy.rules_for("x", rollback=True)}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("version: 1\nstages: [", "not valid yaml"),
        ("version: 2\nstages: {}", "'version' must be 1"),
        ("version: 1\nstages: {Live: []}", "unknown stage 'Live'"),
        ("version: 1\nstages: {Production: [{rule: guess}]}", "unknown rule 'guess'"),
        (
            "version: 1\nstages: {Production: [{rule: min_metric, metric: a}]}",
            "'value' must be a finite number",
        ),
        (
            "version: 1\nstages: {Production: [{rule: no_open_high_drift, x: 1}]}",
            "does not take ['x']",
        ),
        (
            "version: 1\nstages: {Production: [{rule: beats_production, metric: a, direction: up}]}",  # noqa: E501
            "'direction'",
        ),
        ("version: 1\nstages: {}\nextra: 1", "unknown top-level keys ['extra']"),
    ],
)
def test_a_bad_policy_file_names_the_file_and_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(PolicyError) as info:
        policy_read(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_manage_check_reports_a_broken_policy_file(settings: Any, tmp_path: Path) -> None:
    settings.PROMOTION_POLICY_FILE = str(tmp_path / "missing.yaml")
    with pytest.raises(SystemCheckError, match=r"registry.E001.*missing.yaml: cannot be read"):
        call_command("check")
    with pytest.raises(PolicyError):
        policy_active()


def test_a_json_policy_file_is_read_and_reloaded_when_it_changes(
    settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"version": 1, "stages": {"Staging": []}}))
    settings.PROMOTION_POLICY_FILE = str(path)
    assert policy_active().rules_for(Stage.STAGING) == ()
    path.write_text(
        json.dumps({"version": 1, "stages": {"Staging": [{"rule": "required_permission"}]}})
    )
    import os

    os.utime(path, ns=(1, 10**18))
    assert [r.kind for r in policy_active().rules_for(Stage.STAGING)] == ["required_permission"]
