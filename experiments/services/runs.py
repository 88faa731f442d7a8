"""Runs: create (mirroring MLflow's mlflow.* tags into columns), update, finish, delete, and the
lineage link to the feature view version and training-set definition a run trained on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from experiments import validation
from experiments.constants import (
    MAX_RUN_NAME_LENGTH,
    MAX_SOURCE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_USER_NAME_LENGTH,
    TAG_PARENT_RUN_ID,
    TAG_RUN_NAME,
    TAG_SOURCE_NAME,
    TAG_USER,
)
from experiments.errors import InvalidParameterError
from experiments.models import Experiment, Lifecycle, Run, RunTag, run_uuid_new
from experiments.services.common import Pairs, key_value_pairs, now_ms, parent_run
from features.models import FeatureView

TRAINING_SET_MAX_BYTES = 64 * 1024


def _training_set_definition(
    training_set: Mapping[str, Any] | None, feature_view: FeatureView | None
) -> dict[str, Any] | None:
    """The definition as stored: a JSON object naming the view and version it was built from."""
    if training_set is None:
        if feature_view is None:
            return None
        return {"view": feature_view.name, "version": feature_view.version}
    if not isinstance(training_set, Mapping):
        raise InvalidParameterError("training_set: a JSON object is required")
    definition = dict(training_set)
    if feature_view is not None:
        for key, actual in (("view", feature_view.name), ("version", feature_view.version)):
            if definition.setdefault(key, actual) != actual:
                raise InvalidParameterError(
                    f"training_set.{key}: {definition[key]!r} disagrees with the linked feature "
                    f"view {feature_view.name} v{feature_view.version}"
                )
    try:
        encoded = json.dumps(definition, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"training_set: not plain JSON ({exc})") from exc
    if len(encoded) > TRAINING_SET_MAX_BYTES:
        raise InvalidParameterError(f"training_set: larger than {TRAINING_SET_MAX_BYTES} bytes")
    return definition


def run_create(
    *,
    experiment: Experiment,
    name: str = "",
    user: AbstractBaseUser | None = None,
    user_name: str = "",
    source: str = "",
    tags: Pairs = None,
    parent: Run | None = None,
    start_time_ms: int | None = None,
    feature_view: FeatureView | None = None,
    training_set: Mapping[str, Any] | None = None,
) -> Run:
    """A RUNNING run of an active experiment. The run's name, parent, user and source also
    appear as MLflow's tags (mlflow.runName, mlflow.parentRunId, mlflow.user,
    mlflow.source.name), and tags given here fill them in when the arguments are empty."""
    if experiment.lifecycle != Lifecycle.ACTIVE:
        raise InvalidParameterError(
            f"Could not create run under non-active experiment with ID {experiment.pk}."
        )
    tag_map = dict(
        key_value_pairs(tags, field="tags", max_value_length=MAX_TAG_VALUE_LENGTH, unique=False)
    )
    name = validation.text(name, field="run_name", max_length=MAX_RUN_NAME_LENGTH)
    if name and tag_map.get(TAG_RUN_NAME, name) != name:
        raise InvalidParameterError(
            f"Both 'run_name' ({name!r}) and the '{TAG_RUN_NAME}' tag "
            f"({tag_map[TAG_RUN_NAME]!r}) are given, with different values"
        )
    name = name or tag_map.get(TAG_RUN_NAME) or ""
    run_uuid = run_uuid_new()
    name = validation.text(name, field=TAG_RUN_NAME, max_length=MAX_RUN_NAME_LENGTH) or (
        f"run-{run_uuid[:8]}"
    )
    if parent is None and tag_map.get(TAG_PARENT_RUN_ID):
        parent = parent_run(tag_map[TAG_PARENT_RUN_ID])
    user_name = user_name or tag_map.get(TAG_USER) or (user.get_username() if user else "")
    user_name = validation.text(user_name, field="user_id", max_length=MAX_USER_NAME_LENGTH)
    source = validation.text(
        source or tag_map.get(TAG_SOURCE_NAME, ""), field="source", max_length=8000
    )
    definition = _training_set_definition(training_set, feature_view)
    start = (
        now_ms()
        if start_time_ms is None
        else validation.int64(start_time_ms, field="start_time", minimum=0)
    )
    tag_map[TAG_RUN_NAME] = name
    if parent is not None:
        tag_map[TAG_PARENT_RUN_ID] = parent.run_uuid
    with transaction.atomic():
        run = Run.objects.create(
            run_uuid=run_uuid,
            experiment=experiment,
            name=name,
            start_time=start,
            user_name=user_name,
            created_by=user if user is not None and user.is_authenticated else None,
            source=source[:MAX_SOURCE_LENGTH],
            parent=parent,
            feature_view=feature_view,
            training_set=definition,
        )
        RunTag.objects.bulk_create(RunTag(run=run, key=k, value=v) for k, v in tag_map.items())
    return run


def run_update(
    *,
    run: Run,
    status: str | None = None,
    end_time_ms: int | None = None,
    name: str | None = None,
) -> Run:
    """Change a run's status, end time or name (the name also sets the mlflow.runName tag).
    A run that ends (FINISHED, FAILED, KILLED) without an end time ends now."""
    fields = []
    if status is not None:
        if status not in Run.Status.values:
            raise InvalidParameterError(
                f"status: {status!r} is not one of {', '.join(Run.Status.values)}"
            )
        run.status = status
        fields.append("status")
        if status != Run.Status.RUNNING and end_time_ms is None and run.end_time is None:
            end_time_ms = now_ms()
    if end_time_ms is not None:
        run.end_time = validation.int64(end_time_ms, field="end_time", minimum=0)
        fields.append("end_time")
    if name:
        run.name = validation.text(name, field="run_name", max_length=MAX_RUN_NAME_LENGTH)
        fields.append("name")
    with transaction.atomic():
        if fields:
            run.save(update_fields=fields)
        if name:
            RunTag.objects.update_or_create(run=run, key=TAG_RUN_NAME, defaults={"value": run.name})
    return run


def run_finish(
    *, run: Run, status: str = Run.Status.FINISHED, end_time_ms: int | None = None
) -> Run:
    """End a run: FINISHED (default), FAILED or KILLED, at `end_time_ms` (default: now)."""
    if status == Run.Status.RUNNING:
        raise InvalidParameterError("status: a run is finished as FINISHED, FAILED or KILLED")
    return run_update(
        run=run, status=status, end_time_ms=now_ms() if end_time_ms is None else end_time_ms
    )


def run_delete(*, run: Run) -> Run:
    run.lifecycle = Lifecycle.DELETED
    run.save(update_fields=["lifecycle"])
    return run


def run_restore(*, run: Run) -> Run:
    run.lifecycle = Lifecycle.ACTIVE
    run.save(update_fields=["lifecycle"])
    return run


def run_link_feature_view(
    *,
    run: Run,
    feature_view: FeatureView,
    training_set: Mapping[str, Any] | None = None,
) -> Run:
    """Record the feature view version and the training-set definition the run trained on.

    `training_set` is a JSON object such as {"view": "core_technical", "version": 3,
    "symbols": ["AAPL", "SPY"], "window": {"start": "2024-01-01", "end": "2024-12-31"},
    "label": "next_bar_direction"}; view and version are filled from `feature_view` and must
    agree with it."""
    run.feature_view = feature_view
    run.training_set = _training_set_definition(training_set, feature_view)
    run.save(update_fields=["feature_view", "training_set"])
    return run
