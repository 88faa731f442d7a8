"""The promotion service: policy refusals, overrides, archiving, rollback, audit, events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry.errors import NotPermitted, PromotionConflict, PromotionRefused, RegistryError
from registry.models import ImmutableRowError, ModelVersion, Stage, StageTransition
from registry.services import version_rollback, version_transition
from tradingsite.models import Event

pytestmark = pytest.mark.django_db
GOOD = {"accuracy": 0.6, "roc_auc": 0.6}
FLAT = {"accuracy": 0.5, "roc_auc": 0.5}


def stage(version: ModelVersion) -> str:
    version.refresh_from_db()
    return version.stage


def promote(version: ModelVersion, actor: Any, **kwargs: Any) -> StageTransition:
    return version_transition(
        version=version, to_stage=Stage.PRODUCTION, actor=actor, reason="ship it", **kwargs
    )


def test_a_passing_version_enters_production_with_an_audit_row_and_an_event(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    version = make_version(metrics=GOOD)
    transition = promote(version, promoter)
    assert stage(version) == Stage.PRODUCTION
    assert transition.outcome == "applied" and transition.actor == promoter
    assert (transition.from_stage, transition.to_stage) == (Stage.NONE, Stage.PRODUCTION)
    assert {r["rule"] for r in transition.policy_results} >= {"min_metric", "required_permission"}
    assert all(r["passed"] for r in transition.policy_results)
    event = Event.objects.get(type="models.promoted")
    assert event.payload["version"] == 1 and event.payload["transition_id"] == transition.pk


def test_promoting_archives_the_previous_production_version(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    first = make_version(metrics=GOOD)
    second = make_version(metrics={"accuracy": 0.6, "roc_auc": 0.65})
    promote(first, promoter)
    promote(second, promoter)
    assert (stage(first), stage(second)) == (Stage.ARCHIVED, Stage.PRODUCTION)
    archived = StageTransition.objects.get(version=first, to_stage=Stage.ARCHIVED)
    assert archived.from_stage == Stage.PRODUCTION and archived.outcome == "applied"
    assert "replaced by v2" in archived.reason
    assert Event.objects.filter(type="models.promoted").last().payload["archived_version"] == 1


def test_a_refusal_is_recorded_with_every_rules_result(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    version = make_version(metrics=FLAT)
    with pytest.raises(PromotionRefused) as info:
        promote(version, promoter)
    assert stage(version) == Stage.NONE
    failed = [r for r in info.value.results if not r["passed"]]
    assert [r["rule"] for r in failed] == ["min_metric", "min_metric"]
    assert len(info.value.results) == 7  # every rule of the default Production policy
    row = StageTransition.objects.get(pk=info.value.transition_id)
    assert row.outcome == "refused" and row.policy_results == info.value.results
    assert not Event.objects.filter(topic="models").exists()


def test_a_version_must_beat_production(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    promote(make_version(metrics={"accuracy": 0.6, "roc_auc": 0.7}), promoter)
    with pytest.raises(PromotionRefused, match="beats_production failed"):
        promote(make_version(metrics=GOOD), promoter)


def test_a_permitted_user_overrides_with_a_justification(
    make_version: Callable[..., ModelVersion], overrider: Any
) -> None:
    version = make_version(metrics=FLAT)
    transition = promote(version, overrider, override_justification="known flat market, ok")
    assert stage(version) == Stage.PRODUCTION
    assert transition.outcome == "overridden"
    assert transition.override_justification == "known flat market, ok"
    assert any(not r["passed"] for r in transition.policy_results)


def test_an_override_needs_the_permission_and_ten_characters(
    make_version: Callable[..., ModelVersion], promoter: Any, overrider: Any
) -> None:
    version = make_version(metrics=FLAT)
    with pytest.raises(NotPermitted, match="override_promotion_policy"):
        promote(version, promoter, override_justification="I really want this one")
    with pytest.raises(RegistryError, match="at least 10 characters"):
        promote(version, overrider, override_justification="because")
    assert stage(version) == Stage.NONE


def test_integrity_and_permission_rules_cannot_be_overridden(
    make_version: Callable[..., ModelVersion], overrider: Any
) -> None:
    from experiments.storage import blob_path

    version = make_version(metrics=FLAT)
    path = blob_path(version.artifact_sha256)
    path.chmod(0o644)
    path.write_bytes(b"swapped")
    with pytest.raises(PromotionRefused, match="cannot be overridden"):
        promote(version, overrider, override_justification="flat market, accepted risk")
    assert stage(version) == Stage.NONE
    assert StageTransition.objects.get().outcome == "refused"


def test_a_user_without_the_permission_is_refused_by_the_policy(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    version = make_version(metrics=GOOD)
    with pytest.raises(PromotionRefused, match="required_permission failed"):
        version_transition(version=version, to_stage=Stage.STAGING, actor=user, reason="try")


def test_a_stale_view_of_production_is_a_recorded_conflict(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    first, second = make_version(metrics=GOOD), make_version(metrics=GOOD)
    promote(first, promoter, expected_production=None)
    with pytest.raises(PromotionConflict):
        promote(second, promoter, expected_production=None)
    assert (stage(first), stage(second)) == (Stage.PRODUCTION, Stage.NONE)
    outcomes = [t.outcome for t in StageTransition.objects.order_by("id")]
    assert outcomes == ["applied", "conflict"]


def test_a_transition_needs_a_reason_and_a_new_stage(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    version = make_version()
    with pytest.raises(RegistryError, match="reason is required"):
        version_transition(version=version, to_stage=Stage.STAGING, actor=promoter, reason=" ")
    with pytest.raises(RegistryError, match="already in None"):
        version_transition(version=version, to_stage=Stage.NONE, actor=promoter, reason="x")


def test_rollback_restores_the_previous_production_version(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    first = make_version(metrics=GOOD)
    second = make_version(metrics={"accuracy": 0.6, "roc_auc": 0.7})
    with pytest.raises(RegistryError, match="no previous Production version"):
        version_rollback(model=first.model, actor=promoter, reason="bad")
    promote(first, promoter)
    promote(second, promoter)
    transition = version_rollback(model=first.model, actor=promoter, reason="v2 misbehaves")
    assert (stage(first), stage(second)) == (Stage.PRODUCTION, Stage.ARCHIVED)
    assert transition.version == first and transition.from_stage == Stage.ARCHIVED
    assert transition.outcome == "applied"  # the rollback rules do not ask v1 to beat v2
    assert [r["rule"] for r in transition.policy_results] == [
        "no_open_high_drift", "feature_quality_min", "artifact_hash_verifies",
        "required_permission",
    ]  # fmt: skip
    event = Event.objects.get(type="models.rolled_back")
    assert event.payload["version"] == 1 and event.payload["archived_version"] == 2
    # A second rollback goes back to v2: the previous Production version is v2 now.
    version_rollback(model=first.model, actor=promoter, reason="v1 was worse")
    assert stage(second) == Stage.PRODUCTION


def test_rollback_goes_through_the_policy(
    make_version: Callable[..., ModelVersion], promoter: Any, user: Any
) -> None:
    first, second = (
        make_version(metrics=GOOD),
        make_version(metrics={"accuracy": 0.6, "roc_auc": 0.7}),
    )
    promote(first, promoter)
    promote(second, promoter)
    with pytest.raises(PromotionRefused, match="required_permission"):
        version_rollback(model=first.model, actor=user, reason="not mine to do")
    assert stage(second) == Stage.PRODUCTION


def test_stage_transitions_are_immutable(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    transition = promote(make_version(metrics=GOOD), promoter)
    transition.reason = "rewritten"
    with pytest.raises(ImmutableRowError):
        transition.save()
    with pytest.raises(ImmutableRowError):
        transition.delete()
    with pytest.raises(ImmutableRowError):
        StageTransition.objects.filter(pk=transition.pk).update(reason="x")
    with pytest.raises(ImmutableRowError):
        StageTransition.objects.all().delete()
    assert StageTransition.objects.get(pk=transition.pk).reason == "ship it"


def test_a_custom_policy_file_applies(
    make_version: Callable[..., ModelVersion], promoter: Any, settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "policy.json"
    rule = {"rule": "min_metric", "metric": "sharpe", "value": 1}
    path.write_text(json.dumps({"version": 1, "stages": {"Staging": [rule]}}))
    settings.PROMOTION_POLICY_FILE = str(path)
    with pytest.raises(PromotionRefused, match="min_metric failed"):
        version_transition(
            version=make_version(), to_stage=Stage.STAGING, actor=promoter, reason="try"
        )


def test_the_unique_index_is_the_fence_when_the_lock_is_bypassed(
    make_version: Callable[..., ModelVersion], promoter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_version(metrics=GOOD)
    second = make_version(metrics={"accuracy": 0.6, "roc_auc": 0.7})
    promote(first, promoter)
    # A writer that does not see the Production row (as if it skipped the lock and the check).
    monkeypatch.setattr("registry.services.production_version", lambda **kwargs: None)
    with pytest.raises(PromotionConflict):
        promote(second, promoter)
    assert (stage(first), stage(second)) == (Stage.PRODUCTION, Stage.NONE)
    latest = StageTransition.objects.order_by("-id").first()
    assert (latest.version, latest.outcome) == (second, "conflict")
