from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, QuerySet

from registry.models import ModelAlias, ModelVersion, RegisteredModel, Stage, StageTransition
from registry.policy import PromotionFacts, Rule, permissions_needed


def production_versions() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(stage=Stage.PRODUCTION).select_related("model")


def registry_counts() -> dict[str, int]:
    return {
        "models": RegisteredModel.objects.count(),
        "versions": ModelVersion.objects.count(),
        "production_versions": production_versions().count(),
    }


def registered_models() -> QuerySet[RegisteredModel]:
    """Models with their versions (newest first) and aliases, for listings."""
    return RegisteredModel.objects.select_related("owner").prefetch_related(
        Prefetch("versions", queryset=ModelVersion.objects.order_by("-version")),
        Prefetch("aliases", queryset=ModelAlias.objects.select_related("version")),
    )


def model_versions(*, model: RegisteredModel) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(model=model)
        .select_related("model", "run", "feature_view", "created_by")
        .prefetch_related("aliases")
        .order_by("-version")
    )


def model_history(*, model: RegisteredModel) -> QuerySet[StageTransition]:
    return (
        StageTransition.objects.filter(model=model)
        .select_related("version", "actor")
        .order_by("-created_at", "-id")
    )


def production_version(*, model: RegisteredModel) -> ModelVersion | None:
    return ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).first()


def rollback_target(*, model: RegisteredModel) -> ModelVersion | None:
    """The version that was in Production before the current one (from the history)."""
    current = production_version(model=model)
    applied = (
        StageTransition.objects.filter(
            model=model,
            to_stage=Stage.PRODUCTION,
            outcome__in=[StageTransition.Outcome.APPLIED, StageTransition.Outcome.OVERRIDDEN],
        )
        .select_related("version")
        .order_by("-created_at", "-id")
    )
    for transition in applied:
        if current is None or transition.version_id != current.pk:
            return transition.version
    return None


def _label(version: ModelVersion) -> str:
    return f"{version.model.name} v{version.version}"


def promotion_facts(
    *, version: ModelVersion, rules: tuple[Rule, ...], actor: AbstractBaseUser | AnonymousUser
) -> PromotionFacts:
    """The values the policy's rules look at; costly ones only when a rule needs them."""
    from drift.selectors import open_high_drift
    from experiments.storage import blob_verify
    from features.models import MaterializationJob

    kinds = {rule.kind for rule in rules}
    production = (
        ModelVersion.objects.filter(model_id=version.model_id, stage=Stage.PRODUCTION)
        .exclude(pk=version.pk)
        .select_related("model")
        .first()
    )
    drift_text = None
    if "no_open_high_drift" in kinds and (report := open_high_drift(model_version=version)):
        drift_text = (
            f"report {report.pk} for {report.window_start:%Y-%m-%d %H:%M}–"
            f"{report.window_end:%Y-%m-%d %H:%M}, {report.share_drifted:.0%} of features drifted"
        )
    quality = None
    view = version.feature_view
    if "feature_quality_min" in kinds and view is not None:
        job = (
            MaterializationJob.objects.filter(view=view, status=MaterializationJob.Status.SUCCEEDED)
            .order_by("-finished_at", "-created_at", "-id")
            .first()
        )
        score = None if job is None else (job.quality or {}).get("score")
        quality = float(score) if isinstance(score, int | float) else None
    verifies = None
    if "artifact_hash_verifies" in kinds:
        verifies = bool(version.artifact_sha256) and blob_verify(version.artifact_sha256)
    needed = permissions_needed(rules)
    held = frozenset(p for p in needed if getattr(actor, "is_active", False) and actor.has_perm(p))
    return PromotionFacts(
        version_label=_label(version),
        metrics=dict(version.metrics or {}),
        production_label=None if production is None else _label(production),
        production_metrics={} if production is None else dict(production.metrics or {}),
        open_high_drift=drift_text,
        feature_view_label=None if view is None else f"{view.name} v{view.version}",
        feature_quality=quality,
        artifact_verifies=verifies,
        actor_permissions=held,
    )
