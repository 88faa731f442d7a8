"""Registry writes: register a run's model as a version, move versions between stages (one code
path for the API, the admin and later the MLflow endpoints), roll back, set aliases."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Max

from experiments.models import Run
from experiments.storage import blob_open, blob_verify
from registry.errors import (
    ArtifactIntegrityError,
    NotPermitted,
    PromotionConflict,
    PromotionRefused,
    RegistryError,
    UnsupportedModelFormat,
)
from registry.models import (
    ALIAS_PATTERN,
    MAX_MODEL_BYTES,
    MODEL_NAME_PATTERN,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Stage,
    StageTransition,
)
from registry.policy import (
    NOT_OVERRIDABLE,
    OVERRIDE_PERMISSION,
    PROMOTE_PERMISSION,
    RuleResult,
    policy_active,
    policy_evaluate,
)
from registry.selectors import production_version, promotion_facts, rollback_target
from tradingsite import audit
from tradingsite.events import event_publish
from tradingsite.models import AuditAction, AuditOutcome
from tradingsite.observability.request_id import current_request_id

User = AbstractBaseUser | AnonymousUser
Outcome = StageTransition.Outcome
MIN_JUSTIFICATION_CHARS = 10
MAX_REASON_CHARS = 2000
_UNSET: Any = object()


def _user_or_none(user: User | None) -> AbstractBaseUser | None:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# --- versions ---------------------------------------------------------------------------------


def _metrics_snapshot(run: Run) -> dict[str, float | None]:
    snapshot: dict[str, float | None] = {}
    for key, value, is_nan in run.latest_metrics.values_list("key", "value", "is_nan"):
        snapshot[key] = None if is_nan or not math.isfinite(value) else float(value)
    return snapshot


def _reference_statistics(run: Run) -> dict[str, Any] | None:
    from experiments.train import REFERENCE_ARTIFACT

    artifact = run.artifacts.filter(path=REFERENCE_ARTIFACT).first()
    if artifact is None:
        return None
    if not blob_verify(artifact.sha256):
        raise ArtifactIntegrityError(
            f"run {run.run_uuid}: {REFERENCE_ARTIFACT} does not hash to its recorded sha256"
        )
    with blob_open(artifact.sha256) as blob:
        try:
            data = json.load(blob)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryError(
                f"run {run.run_uuid}: {REFERENCE_ARTIFACT} is not valid JSON ({exc})"
            ) from exc
    if not isinstance(data, dict):
        raise RegistryError(f"run {run.run_uuid}: {REFERENCE_ARTIFACT} is not a JSON object")
    return data


def model_version_create_from_run(
    *, model_name: str, run: Run, user: User | None, description: str = ""
) -> ModelVersion:
    """Register `run`'s model artifact as the next version of `model_name` (created if absent),
    copying its lineage: feature view, training set, artifact hash, metrics, reference stats."""
    from experiments.train import MODEL_ARTIFACT

    if not re.match(MODEL_NAME_PATTERN, model_name):
        raise RegistryError(f"model name {model_name!r} must match {MODEL_NAME_PATTERN}")
    if not run.is_active:
        raise RegistryError(f"run {run.run_uuid} is deleted")
    if run.status != Run.Status.FINISHED:
        raise RegistryError(
            f"run {run.run_uuid} is {run.status}; only a FINISHED run can be registered"
        )
    artifact = run.artifacts.filter(path=MODEL_ARTIFACT).first()
    if artifact is None:
        raise RegistryError(f"run {run.run_uuid} has no model artifact at {MODEL_ARTIFACT!r}")
    if not blob_verify(artifact.sha256):
        raise ArtifactIntegrityError(
            f"run {run.run_uuid}: the model artifact is missing or does not hash to "
            f"{artifact.sha256}; it cannot be registered"
        )
    _model_document_check(run=run, sha256=artifact.sha256)
    reference = _reference_statistics(run)
    metrics = _metrics_snapshot(run)
    owner = _user_or_none(user)
    with transaction.atomic():
        model, _ = RegisteredModel.objects.get_or_create(name=model_name, defaults={"owner": owner})
        # The model row lock serializes numbering; unique (model, version) is the fence.
        RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
        last = ModelVersion.objects.filter(model=model).aggregate(last=Max("version"))["last"]
        version = ModelVersion.objects.create(
            model=model,
            version=(last or 0) + 1,
            description=description,
            run=run,
            feature_view_id=run.feature_view_id,
            training_set=run.training_set,
            artifact_path=artifact.path,
            artifact_sha256=artifact.sha256,
            metrics=metrics,
            reference_statistics=reference,
            created_by=owner,
        )
        RegisteredModel.objects.filter(pk=model.pk).update(updated_at=version.created_at)
    return version


def _model_document_check(*, run: Run, sha256: str) -> None:
    """No pickle from users (reliability.md T14): only a tradingsite model document (JSON,
    `experiments.training.artifacts.model_to_bytes`) can become a version. The bytes are parsed
    as JSON, never unpickled, so a malicious upload runs no code; serving checks again."""
    from experiments.train import MODEL_ARTIFACT
    from experiments.training.artifacts import model_from_bytes

    with blob_open(sha256) as blob:
        data = blob.read(MAX_MODEL_BYTES + 1)
    problem = ""
    if len(data) > MAX_MODEL_BYTES:
        problem = f"it is larger than {MAX_MODEL_BYTES} bytes"
    else:
        try:
            model_from_bytes(data)
        except ValueError as exc:
            problem = str(exc)
    if problem:
        raise UnsupportedModelFormat(
            f"run {run.run_uuid}: {MODEL_ARTIFACT} is not a tradingsite model document "
            f"({problem}); pickles and other formats are never registered or loaded"
        )


# --- stage transitions ------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyCheck:
    """A dry run of the policy for (version, stage, actor): nothing is recorded."""

    stage: str
    rollback: bool
    results: list[RuleResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def as_list(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.results]


def policy_check(
    *, version: ModelVersion, to_stage: str, actor: User, rollback: bool = False
) -> PolicyCheck:
    rules = policy_active().rules_for(to_stage, rollback=rollback)
    facts = promotion_facts(version=version, rules=rules, actor=actor)
    return PolicyCheck(stage=to_stage, rollback=rollback, results=policy_evaluate(rules, facts))


def _validate_request(*, to_stage: str, actor: User, reason: str, override: str) -> None:
    if to_stage not in Stage.values:
        raise RegistryError(f"unknown stage {to_stage!r}; stages are {Stage.values}")
    if not reason or not reason.strip():
        raise RegistryError("a reason is required for every stage transition")
    if len(reason) > MAX_REASON_CHARS:
        raise RegistryError(f"the reason is longer than {MAX_REASON_CHARS} characters")
    if override:
        if not (getattr(actor, "is_active", False) and actor.has_perm(OVERRIDE_PERMISSION)):
            raise NotPermitted(f"overriding the promotion policy needs {OVERRIDE_PERMISSION}")
        if len(override.strip()) < MIN_JUSTIFICATION_CHARS:
            raise RegistryError(
                f"an override justification needs at least {MIN_JUSTIFICATION_CHARS} characters"
            )


def _record(
    *,
    version: ModelVersion,
    from_stage: str,
    to_stage: str,
    actor: User,
    reason: str,
    results: list[dict[str, Any]],
    outcome: str,
    override: str = "",
) -> StageTransition:
    return StageTransition.objects.create(
        model_id=version.model_id,
        version=version,
        from_stage=from_stage,
        to_stage=to_stage,
        actor=_user_or_none(actor),
        reason=reason,
        policy_results=results,
        outcome=outcome,
        override_justification=override,
        request_id="" if current_request_id() == "-" else current_request_id(),
    )


def _payload(version: ModelVersion, transition: StageTransition, **extra: Any) -> dict[str, Any]:
    return {
        "model": version.model.name,
        "version": version.version,
        "from_stage": transition.from_stage,
        "to_stage": transition.to_stage,
        "outcome": transition.outcome,
        "actor": getattr(transition.actor, "username", None),
        "transition_id": transition.pk,
        **extra,
    }


def version_transition(
    *,
    version: ModelVersion,
    to_stage: str,
    actor: User,
    reason: str,
    override_justification: str = "",
    expected_production: ModelVersion | None = _UNSET,
    _rollback: bool = False,
) -> StageTransition:
    """Move `version` to `to_stage` if the promotion policy allows it (or a permitted actor
    overrides it), recording the attempt whatever its outcome (see _transition).

    Every attempt is in the audit log (tradingsite.audit). Applied, refused and lost (409)
    attempts write their audit row next to their stage-history row, in the same commit; the
    refused and lost ones commit before the exception is raised. An attempt rejected before
    it has a history row (bad input, no permission, already in the stage) is audited here,
    after its transaction has rolled back.
    """
    try:
        return _transition(
            version=version, to_stage=to_stage, actor=actor, reason=reason,
            override_justification=override_justification,
            expected_production=expected_production, _rollback=_rollback,
        )  # fmt: skip
    except (PromotionRefused, PromotionConflict):
        raise  # audited with its stage-history row
    except RegistryError as exc:
        audit.record(
            AuditAction.ROLLBACK if _rollback else AuditAction.PROMOTION,
            outcome=AuditOutcome.DENIED if isinstance(exc, NotPermitted) else AuditOutcome.INVALID,
            actor=_user_or_none(actor),
            target=version,
            details={
                "model": version.model.name, "version": version.version,
                "from_stage": version.stage, "to_stage": to_stage, "reason": reason,
                "override_justification": override_justification,
                "error": str(exc), "code": exc.code,
            },
        )  # fmt: skip
        raise


def _audit_transition(transition: StageTransition, *, rollback: bool, **extra: Any) -> None:
    """The audit row of a recorded attempt, written in the attempt's transaction."""
    version = transition.version
    audit.record(
        AuditAction.ROLLBACK if rollback else AuditAction.PROMOTION,
        outcome=transition.outcome,
        actor=transition.actor,
        target=version,
        details={
            "model": version.model.name, "version": version.version,
            "from_stage": transition.from_stage, "to_stage": transition.to_stage,
            "reason": transition.reason,
            "override_justification": transition.override_justification,
            "transition_id": transition.pk, **extra,
        },
    )  # fmt: skip


def _transition(
    *,
    version: ModelVersion,
    to_stage: str,
    actor: User,
    reason: str,
    override_justification: str,
    expected_production: ModelVersion | None,
    _rollback: bool,
) -> StageTransition:
    """The transition itself, recording the attempt whatever its outcome.

    Entering Production archives the version that held it (its own transition row). The
    Production version the caller saw (`expected_production`, by default read when the call
    starts) must still hold Production once the model row is locked: otherwise a concurrent
    promotion won, and this one is recorded as `conflict` and raises PromotionConflict. The
    partial unique index `one_production_version_per_model` backs the lock.
    """
    _validate_request(
        to_stage=to_stage, actor=actor, reason=reason, override=override_justification
    )
    model = version.model
    if expected_production is _UNSET:
        expected_production = production_version(model=model)
    expected_id = None if expected_production is None else expected_production.pk
    from_stage, results = version.stage, []
    record = {"actor": actor, "reason": reason, "to_stage": to_stage}
    try:
        with transaction.atomic():
            RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
            version = ModelVersion.objects.select_related("model", "feature_view").get(
                pk=version.pk
            )
            from_stage = version.stage
            if from_stage == to_stage:
                raise RegistryError(f"{model.name} v{version.version} is already in {to_stage}")
            check = policy_check(
                version=version, to_stage=to_stage, actor=actor, rollback=_rollback
            )
            results = check.as_list()
            current = production_version(model=model)
            if to_stage == Stage.PRODUCTION and (current and current.pk) != expected_id:
                error: RegistryError = _conflict(
                    version, from_stage, results, override_justification, rollback=_rollback,
                    **record,
                )  # fmt: skip
            else:
                failed = [r for r in check.results if not r.passed]
                hard = [r for r in failed if r.rule in NOT_OVERRIDABLE]
                if not failed or (override_justification and not hard):
                    outcome = Outcome.OVERRIDDEN if failed else Outcome.APPLIED
                    return _apply(
                        version=version, from_stage=from_stage, results=results,
                        outcome=outcome, override=override_justification, current=current,
                        rollback=_rollback, **record,
                    )  # fmt: skip
                transition = _record(
                    version=version, from_stage=from_stage, results=results,
                    outcome=StageTransition.Outcome.REFUSED, override=override_justification,
                    **record,
                )  # fmt: skip
                _audit_transition(
                    transition, rollback=_rollback, failed_rules=[r.rule for r in failed]
                )
                note = " (these rules cannot be overridden)" if override_justification else ""
                error = PromotionRefused(
                    f"the promotion policy refused {model.name} v{version.version} -> "
                    f"{to_stage}: {', '.join(r.rule for r in failed)} failed{note}",
                    results=results,
                    transition_id=transition.pk,
                )
    except IntegrityError:
        # The fence: a second Production row got past the lock (it cannot, unless a writer
        # skipped this service); the database refused it, and the attempt is still recorded.
        with transaction.atomic():
            error = _conflict(
                version, from_stage, results, override_justification, rollback=_rollback,
                **record,
            )  # fmt: skip
    raise error


def _conflict(
    version: ModelVersion,
    from_stage: str,
    results: list[dict[str, Any]],
    override: str,
    rollback: bool = False,
    **record: Any,
) -> PromotionConflict:
    transition = _record(
        version=version, from_stage=from_stage, results=results,
        outcome=StageTransition.Outcome.CONFLICT, override=override, **record,
    )  # fmt: skip
    _audit_transition(transition, rollback=rollback)
    return PromotionConflict(
        f"{version.model.name}: the Production version changed while this transition was "
        "requested (a concurrent promotion won); review the new state and try again",
        transition_id=transition.pk,
    )


def _apply(
    *,
    version: ModelVersion,
    from_stage: str,
    to_stage: str,
    actor: User,
    reason: str,
    results: list[dict[str, Any]],
    outcome: str,
    override: str,
    current: ModelVersion | None,
    rollback: bool,
) -> StageTransition:
    archived = None
    if to_stage == Stage.PRODUCTION and current is not None:
        current.stage = Stage.ARCHIVED
        current.save(update_fields=["stage"])
        archived = _record(
            version=current, from_stage=Stage.PRODUCTION, to_stage=Stage.ARCHIVED, actor=actor,
            reason=f"replaced by v{version.version}: {reason}", results=[],
            outcome=StageTransition.Outcome.APPLIED,
        )  # fmt: skip
    version.stage = to_stage
    version.save(update_fields=["stage"])
    transition = _record(
        version=version, from_stage=from_stage, to_stage=to_stage, actor=actor, reason=reason,
        results=results, outcome=outcome, override=override,
    )  # fmt: skip
    extra = {"archived_version": None if archived is None else current.version}
    _audit_transition(transition, rollback=rollback, **extra)
    event_publish(
        type="models.rolled_back" if rollback else "models.promoted",
        subject=f"model:{version.model.name}",
        payload=_payload(version, transition, **extra),
    )
    return transition


def version_rollback(*, model: RegisteredModel, actor: User, reason: str) -> StageTransition:
    """Put the previous Production version (from the history) back in Production, through the
    policy's `rollback` rules; the current one is archived."""
    target = rollback_target(model=model)
    if target is None:
        error = RegistryError(f"{model.name} has no previous Production version to roll back to")
        audit.record(
            AuditAction.ROLLBACK, outcome=AuditOutcome.INVALID, actor=_user_or_none(actor),
            target=model, details={"model": model.name, "reason": reason, "error": str(error)},
        )  # fmt: skip
        raise error
    return version_transition(
        version=target, to_stage=Stage.PRODUCTION, actor=actor, reason=reason, _rollback=True
    )


# --- aliases ----------------------------------------------------------------------------------


def _require(actor: User, permission: str) -> None:
    if not (getattr(actor, "is_active", False) and actor.has_perm(permission)):
        raise NotPermitted(f"this needs the permission {permission}")


def model_alias_set(*, model: RegisteredModel, alias: str, version: ModelVersion) -> ModelAlias:
    if not re.match(ALIAS_PATTERN, alias):
        raise RegistryError(f"alias {alias!r} must match {ALIAS_PATTERN}")
    if alias.lower() == "latest" or alias.lower() in {s.lower() for s in Stage.values}:
        raise RegistryError(f"alias {alias!r} is reserved")
    if version.model_id != model.pk:
        raise RegistryError(f"version {version.version} is not a version of {model.name}")
    with transaction.atomic():
        row, _ = ModelAlias.objects.update_or_create(
            model=model, alias=alias, defaults={"version": version}
        )
    return row


def model_alias_delete(*, model: RegisteredModel, alias: str) -> None:
    deleted, _ = ModelAlias.objects.filter(model=model, alias=alias).delete()
    if not deleted:
        raise RegistryError(f"{model.name} has no alias {alias!r}")


# --- model metadata: descriptions, tags, creation and deletion (the MLflow registry API) -------

MAX_DESCRIPTION_CHARS = 20_000
MAX_TAG_KEY_CHARS = 250
MAX_TAG_VALUE_CHARS = 5000
MAX_SOURCE_CHARS = 1024
PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow's prompt registry marks its models with it


class ModelInUse(RegistryError):
    """The model has a history or dependent records that must be kept, so it cannot go."""

    status_code = 409
    code = "in_use"


def _description_checked(description: Any) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise RegistryError("a description must be a string")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise RegistryError(f"the description is longer than {MAX_DESCRIPTION_CHARS} characters")
    return description


def _tags_checked(tags: dict[str, Any] | None) -> dict[str, str]:
    checked = {}
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_TAG_KEY_CHARS:
            raise RegistryError(f"tag key {key!r}: 1 to {MAX_TAG_KEY_CHARS} characters")
        if key == PROMPT_TAG:
            raise RegistryError(f"tag {PROMPT_TAG!r}: this registry holds models, not prompts")
        value = "" if value is None else value
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE_CHARS:
            raise RegistryError(f"tag {key!r}: the value is a string of <= {MAX_TAG_VALUE_CHARS}")
        checked[key] = value
    return checked


def registered_model_create(
    *, name: str, owner: User | None, description: str = "", tags: dict[str, Any] | None = None
) -> tuple[RegisteredModel, bool]:
    """The model `name` and whether this call created it (with `description` and `tags`); an
    existing model is returned unchanged."""
    if not isinstance(name, str) or not re.fullmatch(MODEL_NAME_PATTERN, name):
        raise RegistryError(f"model name {name!r} must match {MODEL_NAME_PATTERN}")
    defaults = {
        "owner": _user_or_none(owner),
        "description": _description_checked(description),
        "tags": _tags_checked(tags),
    }
    return RegisteredModel.objects.get_or_create(name=name, defaults=defaults)


def registered_model_update(*, model: RegisteredModel, description: str) -> RegisteredModel:
    model.description = _description_checked(description)
    model.save(update_fields=["description", "updated_at"])
    return model


def _tags_edit(row: RegisteredModel | ModelVersion, key: str, value: str | None) -> None:
    """Set (or with None, remove) one tag under a row lock: concurrent edits of other keys of
    the same JSON object are not lost."""
    if value is not None:
        _tags_checked({key: value})
    with transaction.atomic():
        locked = type(row).objects.select_for_update().get(pk=row.pk)
        tags = dict(locked.tags or {})
        if value is None and tags.pop(key, None) is None:
            return  # MLflow: deleting an absent tag is no error, and nothing changes
        if value is not None:
            tags[key] = value
        locked.tags = tags
        fields = ["tags", "updated_at"] if isinstance(locked, RegisteredModel) else ["tags"]
        locked.save(update_fields=fields)
    row.tags = tags


def registered_model_tag_set(*, model: RegisteredModel, key: str, value: str) -> None:
    _tags_edit(model, key, value)


def registered_model_tag_delete(*, model: RegisteredModel, key: str) -> None:
    _tags_edit(model, key, None)


def model_version_tag_set(*, version: ModelVersion, key: str, value: str) -> None:
    _tags_edit(version, key, value)


def model_version_tag_delete(*, version: ModelVersion, key: str) -> None:
    _tags_edit(version, key, None)


def model_version_update(*, version: ModelVersion, description: str) -> ModelVersion:
    version.description = _description_checked(description)
    version.save(update_fields=["description"])
    return version


def model_version_register(
    *,
    model: RegisteredModel,
    run: Run,
    user: User | None,
    source: str,
    description: str = "",
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """model_version_create_from_run, plus the registrant's `source` URI and tags, in one
    transaction (all checks run before anything is written)."""
    tags = _tags_checked(tags)
    description = _description_checked(description)
    if len(source) > MAX_SOURCE_CHARS:
        raise RegistryError(f"the source is longer than {MAX_SOURCE_CHARS} characters")
    with transaction.atomic():
        version = model_version_create_from_run(
            model_name=model.name, run=run, user=user, description=description
        )
        version.source, version.tags = source, tags
        version.save(update_fields=["source", "tags"])
    return version


def stage_versions_archive(
    *, model: RegisteredModel, stage: str, keep: ModelVersion, actor: User, reason: str
) -> list[StageTransition]:
    """Archive every other version of `model` in `stage`, each through version_transition (the
    policy and the history apply to each, as for any stage change)."""
    others = ModelVersion.objects.filter(model=model, stage=stage).exclude(pk=keep.pk)
    return [
        version_transition(version=other, to_stage=Stage.ARCHIVED, actor=actor, reason=reason)
        for other in others.order_by("version")
    ]


def registered_model_delete(*, model: RegisteredModel) -> None:
    """Delete a model only while nothing depends on it (e.g. a mistaken registration): a model
    with stage history keeps it, since the history is immutable, and nothing else that points
    at its versions (drift reports, predictions, ...) is deleted with it."""
    from django.db.models.deletion import Collector, ProtectedError, RestrictedError

    with transaction.atomic():
        RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
        if (production := production_version(model=model)) is not None:
            raise ModelInUse(
                f"{model.name} v{production.version} is in Production; a model with a "
                "Production version (or any stage history) cannot be deleted: archive it instead"
            )
        if count := StageTransition.objects.filter(model=model).count():
            raise ModelInUse(
                f"{model.name} has {count} stage transition(s) in its history, which is kept "
                "for audit: the model cannot be deleted (archive its versions instead)"
            )
        own = {RegisteredModel, ModelVersion, ModelAlias}
        collector = Collector(using=RegisteredModel.objects.db)
        try:
            collector.collect([model])
        except (ProtectedError, RestrictedError) as exc:
            raise ModelInUse(f"{model.name} cannot be deleted: {exc.args[0]}") from exc
        dependents = {m._meta.verbose_name_plural for m in collector.data if m not in own} | {
            qs.model._meta.verbose_name_plural
            for qs in collector.fast_deletes
            if qs.model not in own and qs.exists()
        }
        if dependents:
            raise ModelInUse(
                f"{model.name} cannot be deleted: its versions have "
                f"{', '.join(sorted(map(str, dependents)))} that would be deleted with it"
            )
        model.delete()


__all__ = [
    "PROMOTE_PERMISSION",
    "ModelInUse",
    "PolicyCheck",
    "model_alias_delete",
    "model_alias_set",
    "model_version_create_from_run",
    "model_version_register",
    "model_version_tag_delete",
    "model_version_tag_set",
    "model_version_update",
    "policy_check",
    "registered_model_create",
    "registered_model_delete",
    "registered_model_tag_delete",
    "registered_model_tag_set",
    "registered_model_update",
    "stage_versions_archive",
    "version_rollback",
    "version_transition",
]
