from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import (
    F,
    OrderBy,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from experiments.bulk import ILike, Like
from experiments.search_filter import (
    ATTRIBUTE,
    TAG,
    Clause,
    Grammar,
    OrderTerm,
    SearchSyntaxError,
    parse_filter,
    parse_order_by,
)
from registry.errors import RegistryError
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


# --- search in MLflow's grammar (the MLflow registry API) -------------------------------------

PROMPT_TAG = "mlflow.prompt.is_prompt"
REGISTERED_MODEL_GRAMMAR = Grammar(
    entities=frozenset({TAG, ATTRIBUTE}),
    numeric_attributes=frozenset({"creation_timestamp", "last_updated_timestamp"}),
    string_attributes=frozenset({"name"}),
    aliases={"timestamp": "last_updated_timestamp"},
)
MODEL_VERSION_GRAMMAR = Grammar(
    entities=frozenset({TAG, ATTRIBUTE}),
    numeric_attributes=frozenset(
        {"version_number", "creation_timestamp", "last_updated_timestamp"}
    ),
    string_attributes=frozenset({"name", "run_id", "source_path"}),
)
_MODEL_COLUMNS = {
    "name": "name",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "updated_at",
}
_VERSION_COLUMNS = {
    "name": "model__name",
    "run_id": "run__run_uuid",
    "source_path": "source",
    "version_number": "version",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "last_changed_at",
}
_TIMESTAMPS = frozenset({"creation_timestamp", "last_updated_timestamp"})
_LOOKUPS = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def model_versions_detailed() -> QuerySet[ModelVersion]:
    """Versions with what MLflow shows of them: model, run, registrant, aliases, and the time of
    their last stage change (`last_changed_at`, their creation if never moved)."""
    moved = StageTransition.objects.filter(
        version=OuterRef("pk"),
        outcome__in=[StageTransition.Outcome.APPLIED, StageTransition.Outcome.OVERRIDDEN],
    ).order_by("-created_at")
    return (
        ModelVersion.objects.select_related("model", "run", "created_by")
        .prefetch_related("aliases")
        .annotate(last_changed_at=Coalesce(Subquery(moved.values("created_at")[:1]), "created_at"))
    )


def registered_models_detailed() -> QuerySet[RegisteredModel]:
    """Models with their detailed versions (newest first) and aliases."""
    return RegisteredModel.objects.select_related("owner").prefetch_related(
        Prefetch("versions", queryset=model_versions_detailed().order_by("-version")),
        Prefetch("aliases", queryset=ModelAlias.objects.select_related("version")),
    )


def _compared(queryset: QuerySet, column: str, comparator: str, value: Any) -> QuerySet:
    """`column <comparator> value` with SQL's semantics (a NULL column matches nothing)."""
    if comparator == "LIKE":
        return queryset.filter(Like(F(column), Value(value)))
    if comparator == "ILIKE":
        return queryset.filter(ILike(F(column), Value(value)))
    if comparator in ("IN", "NOT IN"):
        condition = Q(**{f"{column}__in": list(value)})
        return queryset.filter(condition if comparator == "IN" else ~condition)
    if comparator == "!=":
        return queryset.filter(**{f"{column}__isnull": False}).exclude(**{column: value})
    return queryset.filter(**{f"{column}__{_LOOKUPS[comparator]}": value})


def _tag_compared(queryset: QuerySet, clause: Clause, index: int) -> QuerySet:
    alias = f"_tag{index}"
    # Cast: KeyTextTransform keeps JSON lookups (its `exact` would compare JSON, not text).
    text = Cast(KeyTextTransform(clause.key, "tags"), output_field=TextField())
    queryset = queryset.annotate(**{alias: text})
    if clause.comparator in ("IS NULL", "IS NOT NULL"):
        return queryset.filter(**{f"{alias}__isnull": clause.comparator == "IS NULL"})
    if clause.key == PROMPT_TAG and clause.comparator == "!=":
        # MLflow's client adds "tag.`mlflow.prompt.is_prompt` != 'true'" to every model
        # search; as in MLflow's store, a model without the tag matches it.
        return queryset.filter(Q(**{f"{alias}__isnull": True}) | ~Q(**{alias: clause.value}))
    return _compared(queryset, alias, clause.comparator, clause.value)


def _attribute_value(clause: Clause) -> Any:
    """The clause's value as its column holds it: timestamps (ms) as datetimes, version
    numbers as integers; out of range is a RegistryError, not a database error."""
    value = clause.value
    if clause.key == "version_number" and not (isinstance(value, int) and 0 <= value < 2**31):
        raise RegistryError(f"version_number: {value!r} is not a version number")
    if clause.key in _TIMESTAMPS:
        try:
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)  # type: ignore[arg-type]
        except (OverflowError, OSError, ValueError):
            raise RegistryError(f"{clause.key}: {value!r} is not a time in ms") from None
    return value


def _searched(
    queryset: QuerySet,
    grammar: Grammar,
    columns: dict[str, str],
    filter_string: str | None,
    order_by: Sequence[str],
) -> tuple[QuerySet, list[OrderTerm]]:
    try:
        clauses = parse_filter(filter_string, grammar)
        terms = [parse_order_by(term, grammar) for term in order_by]
    except SearchSyntaxError as exc:
        raise RegistryError(str(exc)) from exc
    for index, clause in enumerate(clauses):
        if clause.entity == TAG:
            queryset = _tag_compared(queryset, clause, index)
            continue
        queryset = _compared(
            queryset, columns[clause.key], clause.comparator, _attribute_value(clause)
        )
    if any(term.entity != ATTRIBUTE for term in terms):
        raise RegistryError(f"order_by takes attributes only: {sorted(columns)}")
    return queryset, terms


def _ordering(terms: Sequence[OrderTerm], columns: dict[str, str]) -> list[OrderBy]:
    return [F(columns[t.key]).asc() if t.ascending else F(columns[t.key]).desc() for t in terms]


def registered_model_search(
    *, filter_string: str | None = "", order_by: Sequence[str] = ()
) -> QuerySet[RegisteredModel]:
    """Models matching MLflow's filter (name, tags) in `order_by` order, then by name."""
    queryset, terms = _searched(
        registered_models_detailed(), REGISTERED_MODEL_GRAMMAR, _MODEL_COLUMNS,
        filter_string, order_by,
    )  # fmt: skip
    ordering = _ordering(terms, _MODEL_COLUMNS)
    if "name" not in {t.key for t in terms}:
        ordering.append(F("name").asc())
    return queryset.order_by(*ordering)


def model_version_search(
    *, filter_string: str | None = "", order_by: Sequence[str] = ()
) -> QuerySet[ModelVersion]:
    """Versions matching MLflow's filter (name, run_id, version_number, source_path, tags);
    MLflow's default order: last change first, then by model name and newest version."""
    order_by = order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]
    queryset, terms = _searched(
        model_versions_detailed(), MODEL_VERSION_GRAMMAR, _VERSION_COLUMNS,
        filter_string, order_by,
    )  # fmt: skip
    ordering = _ordering(terms, _VERSION_COLUMNS)
    keys = {t.key for t in terms}
    if "name" not in keys:
        ordering.append(F("model__name").asc())
    if "version_number" not in keys:
        ordering.append(F("version").desc())
    return queryset.order_by(*ordering)
