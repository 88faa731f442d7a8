"""Logging a batch of params, metric points and tags to a run: validated first, written in one
transaction (metric points by COPY or one statement, experiments.bulk), all or nothing."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from experiments import validation
from experiments.bulk import MetricRow, metrics_single_statement, metrics_write
from experiments.constants import (
    INT64_MAX,
    INT64_MIN,
    MAX_PARAM_VALUE_LENGTH,
    MAX_RUN_NAME_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MLFLOW_MAX_BATCH_ENTITIES,
    MLFLOW_MAX_BATCH_METRICS,
    MLFLOW_MAX_BATCH_PARAMS,
    MLFLOW_MAX_BATCH_TAGS,
    NATIVE_MAX_BATCH_METRICS,
    NATIVE_MAX_BATCH_PARAMS,
    NATIVE_MAX_BATCH_TAGS,
    TAG_PARENT_RUN_ID,
    TAG_RUN_NAME,
)
from experiments.errors import InvalidParameterError, ResourceDoesNotExistError
from experiments.models import Param, Run, RunTag
from experiments.services.common import (
    Pairs,
    key_value_pairs,
    now_ms,
    parent_run,
    require_active,
)

_INFINITIES = (math.inf, -math.inf)


@dataclass(frozen=True)
class BatchLimits:
    """The most params, metrics and tags one batch may carry (None: no limit on the total)."""

    metrics: int
    params: int
    tags: int
    entities: int | None = None


MLFLOW_LIMITS = BatchLimits(
    metrics=MLFLOW_MAX_BATCH_METRICS,
    params=MLFLOW_MAX_BATCH_PARAMS,
    tags=MLFLOW_MAX_BATCH_TAGS,
    entities=MLFLOW_MAX_BATCH_ENTITIES,
)
NATIVE_LIMITS = BatchLimits(
    metrics=NATIVE_MAX_BATCH_METRICS, params=NATIVE_MAX_BATCH_PARAMS, tags=NATIVE_MAX_BATCH_TAGS
)


def _point(by_key: bool, index: int, key: Any, name: str) -> str:
    """The path of a point's field in error messages: metrics.<key>.value or metrics[3].value."""
    return f"metrics.{key}.{name}" if by_key else f"metrics[{index}].{name}"


def _metric_points(
    metrics: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None,
    *,
    step: int,
    timestamp_ms: int,
) -> list[tuple[str, float, bool, int, int]]:
    """Validated (key, stored value, is_nan, step, timestamp), exact duplicates dropped.

    The hot path of batch logging: plain floats, ints and already-seen keys skip the checks
    (a batch repeats a few keys many times); anything else goes through experiments.validation,
    whose errors name the point (`metrics[37].value`)."""
    if metrics is None:
        return []
    if isinstance(metrics, Mapping):
        items: list[Any] = [{"key": k, "value": v} for k, v in metrics.items()]
        by_key = True
    elif isinstance(metrics, str | bytes) or not isinstance(metrics, Iterable):
        raise InvalidParameterError("metrics: a list of {key, value, step, timestamp} is required")
    else:
        items, by_key = list(metrics), False
    points: list[tuple[str, float, bool, int, int]] = []
    seen: set[tuple[str, float, bool, int, int]] = set()
    valid_keys: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidParameterError(
                f"metrics[{index}]: a {{key, value, step, timestamp}} object is required"
            )
        key, value = item.get("key"), item.get("value")
        if key not in valid_keys:
            valid_keys.add(validation.entity_key(key, field=_point(by_key, index, key, "key")))
        if type(value) is not float:
            value = validation.metric_value(value, field=_point(by_key, index, key, "value"))
        if value != value or value in _INFINITIES:  # NaN, ±inf: stored as MLflow stores them
            value, is_nan = validation.metric_storage(value)
        else:
            is_nan = False
        point_step = item.get("step")
        if point_step is None:
            point_step = step
        elif type(point_step) is not int or not INT64_MIN <= point_step <= INT64_MAX:
            point_step = validation.int64(point_step, field=_point(by_key, index, key, "step"))
        stamp = item.get("timestamp")
        if stamp is None:
            stamp = timestamp_ms
        elif type(stamp) is not int or not 0 <= stamp <= INT64_MAX:
            field = _point(by_key, index, key, "timestamp")
            stamp = validation.int64(stamp, field=field, minimum=0)
        point = (key, value, is_nan, point_step, stamp)
        if point not in seen:  # MLflow drops exact repeats within a request
            seen.add(point)
            points.append(point)
    return points


def _count(items: Any) -> int:
    try:
        return len(items)
    except TypeError:
        return 0


def _check_limits(*, limits: BatchLimits, metrics: Any, params: Any, tags: Any) -> None:
    counts = {"metrics": _count(metrics), "params": _count(params), "tags": _count(tags)}
    for name, limit in (
        ("metrics", limits.metrics),
        ("params", limits.params),
        ("tags", limits.tags),
    ):
        if counts[name] > limit:
            raise InvalidParameterError(
                f"A batch logging request can contain at most {limit} {name}. Got "
                f"{counts[name]} {name}. Please split up {name} across multiple requests and "
                "try again."
            )
    total = sum(counts.values())
    if limits.entities is not None and total > limits.entities:
        raise InvalidParameterError(
            f"A batch logging request can contain at most {limits.entities} metrics, params, "
            f"and tags. Got {total} metrics, params, and tags. Please split up metrics, params, "
            "and tags across multiple requests and try again."
        )


def _params_insert(run: Run, params: list[tuple[str, str]]) -> None:
    """Params are immutable: the same value again is fine, a different one is refused."""
    if not params:
        return
    keys = [key for key, _ in params]

    def conflicts() -> list[dict[str, str]]:
        logged = dict(Param.objects.filter(run=run, key__in=keys).values_list("key", "value"))
        return [
            {"key": key, "old_value": logged[key], "new_value": value}
            for key, value in params
            if key in logged and logged[key] != value
        ]

    found = conflicts()
    if not found:
        # ignore_conflicts + a second look: a concurrent writer of another value is caught too.
        Param.objects.bulk_create(
            [Param(run=run, key=key, value=value) for key, value in params], ignore_conflicts=True
        )
        found = conflicts()
    if found:
        raise InvalidParameterError(
            "Changing param values is not allowed. Params were already logged="
            f"'{found}' for run ID='{run.run_uuid}'."
        )


def _tags_upsert(run: Run, tags: list[tuple[str, str]]) -> None:
    if not tags:
        return
    latest = dict(tags)  # the last value of a key repeated in one batch wins
    if latest.get(TAG_RUN_NAME):
        run.name = validation.text(
            latest[TAG_RUN_NAME], field=TAG_RUN_NAME, max_length=MAX_RUN_NAME_LENGTH
        )
        run.save(update_fields=["name"])
    if latest.get(TAG_PARENT_RUN_ID):
        run.parent = parent_run(latest[TAG_PARENT_RUN_ID])
        run.save(update_fields=["parent"])
    RunTag.objects.bulk_create(
        [RunTag(run=run, key=key, value=value) for key, value in latest.items()],
        update_conflicts=True,
        unique_fields=["run", "key"],
        update_fields=["value"],
    )


def _metrics_insert(run: Run, points: list[tuple[str, float, bool, int, int]]) -> None:
    if not points:
        return
    run_pk = run.pk
    rows: list[MetricRow] = [(run_pk, *point) for point in points]
    latest: dict[str, MetricRow] = {}
    for row in rows:  # the latest point of each key in this batch: highest (step, ts, value)
        best = latest.get(row[1])
        if best is None or (row[4], row[5], row[2]) > (best[4], best[5], best[2]):
            latest[row[1]] = row
    metrics_write(rows, list(latest.values()))


def run_log_batch(
    *,
    run: Run,
    params: Pairs = None,
    metrics: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
    tags: Pairs = None,
    step: int = 0,
    timestamp_ms: int | None = None,
    limits: BatchLimits = NATIVE_LIMITS,
) -> dict[str, int]:
    """Log params, metric points and tags in one transaction: all of them, or none.

    - params: {"lr": 0.01} or [{"key": "lr", "value": "0.01"}]; values are stored as strings and
      may never change (the same value again is fine).
    - metrics: {"accuracy": 0.54} (each at `step` and `timestamp_ms`, default now) or
      [{"key", "value", "step"?, "timestamp"?}]; NaN and ±inf are accepted (MLflow's storage).
    - tags: like params, but a tag's value may be replaced.
    Returns the number of params, metric points and tags logged.
    """
    _check_limits(limits=limits, metrics=metrics, params=params, tags=tags)
    stamp = (
        now_ms()
        if timestamp_ms is None
        else validation.int64(timestamp_ms, field="timestamp", minimum=0)
    )
    points = _metric_points(metrics, step=validation.int64(step, field="step"), timestamp_ms=stamp)
    param_pairs = key_value_pairs(
        params, field="params", max_value_length=MAX_PARAM_VALUE_LENGTH, unique=True
    )
    tag_pairs = key_value_pairs(
        tags, field="tags", max_value_length=MAX_TAG_VALUE_LENGTH, unique=False
    )
    _check_limits(limits=limits, metrics=points, params=param_pairs, tags=tag_pairs)  # iterators
    require_active(run)
    if not param_pairs and not tag_pairs and metrics_single_statement(len(points)):
        _metrics_insert(run, points)  # one statement: atomic by itself, no BEGIN/COMMIT
    else:
        with transaction.atomic():
            _params_insert(run, param_pairs)
            _tags_upsert(run, tag_pairs)
            _metrics_insert(run, points)
    return {"params": len(param_pairs), "metrics": len(points), "tags": len(tag_pairs)}


def run_tag_delete(*, run: Run, key: str) -> None:
    require_active(run)
    deleted, _ = RunTag.objects.filter(run=run, key=key).delete()
    if not deleted:
        raise ResourceDoesNotExistError(f"No tag with name: {key} in run with id {run.run_uuid}")
