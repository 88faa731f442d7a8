"""Experiments: create (names are unique, also while deleted), rename, soft-delete, tags."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from experiments import validation
from experiments.constants import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    MAX_EXPERIMENT_TAG_VALUE_LENGTH,
    MLFLOW_ARTIFACTS_SCHEME,
)
from experiments.errors import (
    InvalidParameterError,
    ResourceAlreadyExistsError,
    ResourceDoesNotExistError,
)
from experiments.models import Experiment, ExperimentTag, Lifecycle
from experiments.services.common import Pairs, key_value_pairs


def experiment_create(
    *,
    name: str,
    description: str = "",
    tags: Pairs = None,
    artifact_location: str | None = None,
) -> Experiment:
    """A new experiment; the name must be unused (deleted experiments keep theirs)."""
    name = validation.experiment_name(name)
    description = validation.text(description, field="description", max_length=100_000)
    pairs = key_value_pairs(
        tags, field="tags", max_value_length=MAX_EXPERIMENT_TAG_VALUE_LENGTH, unique=False
    )
    if artifact_location:
        # Artifacts live in our content-addressed store; a foreign location (s3://, file://)
        # would send clients around our hash checks and path validation.
        raise InvalidParameterError(
            "artifact_location: tradingsite stores artifacts itself "
            f"({MLFLOW_ARTIFACTS_SCHEME}/<experiment id>); leave it empty"
        )
    if Experiment.objects.filter(name=name).exists():
        raise ResourceAlreadyExistsError(f"Experiment(name={name}) already exists.")
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(name=name, description=description)
            experiment.artifact_location = f"{MLFLOW_ARTIFACTS_SCHEME}/{experiment.pk}"
            experiment.save(update_fields=["artifact_location"])
            ExperimentTag.objects.bulk_create(
                ExperimentTag(experiment=experiment, key=k, value=v) for k, v in dict(pairs).items()
            )
    except IntegrityError as exc:  # a concurrent create of the same name won
        raise ResourceAlreadyExistsError(f"Experiment(name={name}) already exists.") from exc
    return experiment


def experiment_get_or_create(*, name: str, description: str = "", tags: Pairs = None) -> Experiment:
    """The active experiment called `name`, created if there is none. A deleted experiment of
    that name is an error (restore it, or pick another name), as in MLflow's set_experiment."""
    existing = Experiment.objects.filter(name=name).first()
    if existing is None:
        try:
            return experiment_create(name=name, description=description, tags=tags)
        except ResourceAlreadyExistsError:
            existing = Experiment.objects.get(name=name)
    if existing.lifecycle != Lifecycle.ACTIVE:
        raise InvalidParameterError(
            f"Cannot use experiment '{name}' (id {existing.pk}): it is deleted; restore it first."
        )
    return existing


def experiment_default() -> Experiment:
    """MLflow's "Default" experiment (id 0), which clients use when none is set."""
    found = Experiment.objects.filter(pk=DEFAULT_EXPERIMENT_ID).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return Experiment.objects.create(
                pk=DEFAULT_EXPERIMENT_ID,
                name=DEFAULT_EXPERIMENT_NAME,
                artifact_location=f"{MLFLOW_ARTIFACTS_SCHEME}/{DEFAULT_EXPERIMENT_ID}",
            )
    except IntegrityError:
        found = Experiment.objects.filter(pk=DEFAULT_EXPERIMENT_ID).first()
        if found is None:
            raise InvalidParameterError(
                f"experiment id 0 is MLflow's default experiment, but the name "
                f"{DEFAULT_EXPERIMENT_NAME!r} is taken by another experiment; set an experiment"
            ) from None
        return found


def experiment_update(
    *, experiment: Experiment, name: str | None = None, description: str | None = None
) -> Experiment:
    """Rename and/or describe an experiment; the new name must be unused."""
    if name is not None:
        name = validation.experiment_name(name, field="new_name")
        if Experiment.objects.filter(name=name).exclude(pk=experiment.pk).exists():
            raise ResourceAlreadyExistsError(f"Experiment(name={name}) already exists.")
        experiment.name = name
    if description is not None:
        experiment.description = validation.text(
            description, field="description", max_length=100_000
        )
    try:
        with transaction.atomic():
            experiment.save()
    except IntegrityError as exc:
        raise ResourceAlreadyExistsError(f"Experiment(name={name}) already exists.") from exc
    return experiment


@transaction.atomic
def experiment_delete(*, experiment: Experiment) -> Experiment:
    """Soft-delete an experiment and its runs (MLflow's lifecycle); restore brings both back."""
    experiment.lifecycle = Lifecycle.DELETED
    experiment.save(update_fields=["lifecycle", "updated_at"])
    experiment.runs.update(lifecycle=Lifecycle.DELETED)
    return experiment


@transaction.atomic
def experiment_restore(*, experiment: Experiment) -> Experiment:
    experiment.lifecycle = Lifecycle.ACTIVE
    experiment.save(update_fields=["lifecycle", "updated_at"])
    experiment.runs.update(lifecycle=Lifecycle.ACTIVE)
    return experiment


@transaction.atomic
def experiment_tag_set(*, experiment: Experiment, key: str, value: Any) -> None:
    ((key, value),) = key_value_pairs(
        [{"key": key, "value": value}],
        field="tags",
        max_value_length=MAX_EXPERIMENT_TAG_VALUE_LENGTH,
        unique=True,
    )
    ExperimentTag.objects.update_or_create(
        experiment=experiment, key=key, defaults={"value": value}
    )
    experiment.save(update_fields=["updated_at"])


@transaction.atomic
def experiment_tag_delete(*, experiment: Experiment, key: str) -> None:
    deleted, _ = ExperimentTag.objects.filter(experiment=experiment, key=key).delete()
    if not deleted:
        raise ResourceDoesNotExistError(
            f"No tag with name: {key} in experiment with id {experiment.pk}"
        )
    experiment.save(update_fields=["updated_at"])
