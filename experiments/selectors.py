"""Reads of the experiment tracker: lookups, search answered in SQL, histories, comparison.

Search turns MLflow's filter grammar (experiments.search_filter) into one query: metric filters
and ordering use the latest-metric table (one row per run and key, indexed by key and value),
params and tags are EXISTS subqueries, attributes are columns; only a page of runs is read,
and its params, tags and latest metrics come in three more queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import (
    Case,
    CharField,
    Exists,
    F,
    FilteredRelation,
    IntegerField,
    Max,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat

from experiments.bulk import ILike, Like
from experiments.constants import (
    COMPARE_MAX_HISTORY_ROWS,
    COMPARE_MAX_RUNS,
    DEFAULT_EXPERIMENT_ID,
    MLFLOW_ARTIFACTS_SCHEME,
)
from experiments.errors import InvalidParameterError, ResourceDoesNotExistError
from experiments.models import (
    Artifact,
    Experiment,
    ExperimentTag,
    LatestMetric,
    Lifecycle,
    Metric,
    Param,
    Run,
    RunTag,
)
from experiments.search_filter import (
    ATTRIBUTE,
    EXPERIMENT_GRAMMAR,
    METRIC,
    PARAM,
    RUN_GRAMMAR,
    Clause,
    OrderTerm,
    SearchSyntaxError,
    parse_filter,
    parse_order_by,
)
from experiments.validation import artifact_folder

VIEWS = ("active", "deleted", "all")
_NUMERIC_LOOKUPS = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_RUN_COLUMNS = {
    "run_id": "run_uuid",
    "run_name": "name",
    "status": "status",
    "user_id": "user_name",
    "artifact_uri": "_artifact_uri",
    "start_time": "start_time",
    "end_time": "end_time",
}
_EXPERIMENT_COLUMNS = {
    "name": "name",
    "experiment_id": "pk",
    "creation_time": "created_at",
    "last_update_time": "updated_at",
}


def experiment_tracker_counts() -> dict[str, Any]:
    """For /api/v1/ml/status: experiments, runs, running runs, the newest run's start."""
    runs = Run.objects.filter(lifecycle=Lifecycle.ACTIVE)
    last_start_ms = runs.aggregate(last=Max("start_time"))["last"]
    return {
        "experiments": Experiment.objects.filter(lifecycle=Lifecycle.ACTIVE).count(),
        "runs": runs.count(),
        "runs_active": runs.filter(status=Run.Status.RUNNING).count(),
        "last_run_at": None if last_start_ms is None else ms_to_datetime(last_start_ms).isoformat(),
    }


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


# --- single objects -------------------------------------------------------------------------------


def experiment_get(*, experiment_id: int | str) -> Experiment:
    """The experiment, or ResourceDoesNotExistError; id 0 is MLflow's Default experiment."""
    try:
        if isinstance(experiment_id, bool) or not isinstance(experiment_id, int | str):
            raise TypeError(experiment_id)  # int(False) would be the Default experiment
        pk = int(experiment_id)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"experiment_id: {experiment_id!r} is not an experiment id (an integer)"
        ) from None
    found = Experiment.objects.filter(pk=pk).first()
    if found is None and pk == DEFAULT_EXPERIMENT_ID:
        from experiments.services import experiment_default

        return experiment_default()
    if found is None:
        raise ResourceDoesNotExistError(f"No Experiment with id={experiment_id} exists")
    return found


def experiment_get_by_name(*, name: str) -> Experiment:
    found = Experiment.objects.filter(name=name).first()
    if found is None:
        raise ResourceDoesNotExistError(f"Could not find experiment with name '{name}'")
    return found


def run_get(*, run_id: str) -> Run:
    """The run with MLflow id `run_id` (32 hex characters), or ResourceDoesNotExistError."""
    found = Run.objects.filter(run_uuid=run_id).first() if isinstance(run_id, str) else None
    if found is None:
        raise ResourceDoesNotExistError(f"Run with id={run_id} not found")
    return found


_LOGGING_FIELDS = {"id", "run_uuid", "experiment_id", "name", "lifecycle", "parent_id"}


def run_for_logging(*, run_id: str) -> Run:
    """The run, with the columns logging needs (others load on access), by one plain query:
    the hot path of log_metric, where compiling an ORM query costs more than running it."""
    if not isinstance(run_id, str):
        raise ResourceDoesNotExistError(f"Run with id={run_id} not found")
    # from_db() takes a subset of fields in the model's field order.
    fields = [f for f in Run._meta.concrete_fields if f.attname in _LOGGING_FIELDS]
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {', '.join(quote(f.column) for f in fields)} "
        f"FROM {quote(Run._meta.db_table)} WHERE {quote('run_uuid')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [run_id])
        found = cursor.fetchone()
    if found is None:
        raise ResourceDoesNotExistError(f"Run with id={run_id} not found")
    return Run.from_db(DEFAULT_DB_ALIAS, [f.attname for f in fields], found)


def runs_for_ids(run_ids: Sequence[str]) -> list[Run]:
    """The runs of `run_ids`, in that order; an unknown id is an error naming it."""
    found = {run.run_uuid: run for run in Run.objects.filter(run_uuid__in=list(run_ids))}
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        raise ResourceDoesNotExistError(f"Run with id={missing[0]} not found")
    return [found[run_id] for run_id in run_ids]


@dataclass
class RunDetails:
    """What a run logged, as plain tuples: params and tags (key, value), latest metrics
    (key, value, is_nan, step, timestamp)."""

    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[tuple[str, float, bool, int, int]] = field(default_factory=list)


def runs_with_details(runs: Iterable[Run]) -> list[Run]:
    """`runs`, each with `.details` (RunDetails) loaded: three queries for the whole page, and
    tuples rather than model instances (a page of 1,000 runs has ~10,000 params and tags)."""
    runs = list(runs)
    details = {run.pk: RunDetails() for run in runs}
    pks = list(details)
    if pks:
        for run_pk, key, value in Param.objects.filter(run_id__in=pks).values_list(
            "run_id", "key", "value"
        ):
            details[run_pk].params.append((key, value))
        for run_pk, key, value in RunTag.objects.filter(run_id__in=pks).values_list(
            "run_id", "key", "value"
        ):
            details[run_pk].tags.append((key, value))
        for run_pk, *metric in LatestMetric.objects.filter(run_id__in=pks).values_list(
            "run_id", "key", "value", "is_nan", "step", "timestamp"
        ):
            details[run_pk].metrics.append(tuple(metric))  # type: ignore[arg-type]
    for run in runs:
        run.details = details[run.pk]
    return runs


# --- search ---------------------------------------------------------------------------------------


def _lifecycle_filter(queryset: QuerySet, view: str) -> QuerySet:
    if view not in VIEWS:
        raise InvalidParameterError(f"view: {view!r} is not one of {', '.join(VIEWS)}")
    if view == "all":
        return queryset
    return queryset.filter(lifecycle=Lifecycle.ACTIVE if view == "active" else Lifecycle.DELETED)


def _compare(queryset: QuerySet, column: str, comparator: str, value: Any) -> QuerySet:
    """`column <comparator> value` with SQL's semantics (a NULL column matches nothing)."""
    if comparator == "LIKE":
        return queryset.filter(Like(F(column), Value(value)))
    if comparator == "ILIKE":
        return queryset.filter(ILike(F(column), Value(value)))
    if comparator == "IN":
        return queryset.filter(**{f"{column}__in": list(value)})
    if comparator == "NOT IN":
        return queryset.filter(**{f"{column}__isnull": False}).exclude(
            **{f"{column}__in": list(value)}
        )
    if comparator == "!=":
        return queryset.filter(**{f"{column}__isnull": False}).exclude(**{column: value})
    return queryset.filter(**{f"{column}__{_NUMERIC_LOOKUPS[comparator]}": value})


def _entity_exists(model: type, clause: Clause, owner: str = "run_id") -> Exists:
    rows = model.objects.filter(**{owner: OuterRef("pk")}, key=clause.key)
    if clause.comparator in ("IS NULL", "IS NOT NULL"):
        return Exists(rows)
    if model is LatestMetric:
        value = float(clause.value)
        if clause.comparator == "!=":  # NaN differs from every number
            return Exists(rows.filter(Q(is_nan=True) | ~Q(value=value)))
        return Exists(_compare(rows.filter(is_nan=False), "value", clause.comparator, value))
    return Exists(_compare(rows, "value", clause.comparator, clause.value))


def _run_clause(queryset: QuerySet, clause: Clause) -> QuerySet:
    if clause.entity == ATTRIBUTE:
        value = clause.value
        if clause.key == "status" and isinstance(value, str):
            value = value.upper() if clause.comparator in ("=", "!=") else value
        return _compare(queryset, _RUN_COLUMNS[clause.key], clause.comparator, value)
    model = {METRIC: LatestMetric, PARAM: Param}.get(clause.entity, RunTag)
    condition = _entity_exists(model, clause)
    return queryset.filter(~condition if clause.comparator == "IS NULL" else condition)


def _ordered(expression: Any, ascending: bool) -> OrderBy:
    return expression.asc(nulls_last=True) if ascending else expression.desc(nulls_last=True)


def _run_ordering(queryset: QuerySet, terms: Sequence[OrderTerm]) -> QuerySet:
    ordering: list[Any] = []
    for index, term in enumerate(terms):
        if term.entity == ATTRIBUTE:
            ordering.append(_ordered(F(_RUN_COLUMNS[term.key]), term.ascending))
            continue
        alias = f"_order{index}"
        relation = {METRIC: "latest_metrics", PARAM: "params"}.get(term.entity, "tags")
        queryset = queryset.annotate(
            **{alias: FilteredRelation(relation, condition=Q(**{f"{relation}__key": term.key}))}
        )
        if term.entity == METRIC:  # numbers first, then NaN, then runs without the metric
            ordering.append(
                Case(
                    When(**{f"{alias}__is_nan": True}, then=Value(1)),
                    When(**{f"{alias}__id__isnull": True}, then=Value(2)),
                    default=Value(0),
                    output_field=IntegerField(),
                ).asc()
            )
        ordering.append(_ordered(F(f"{alias}__value"), term.ascending))
    if not any(t.entity == ATTRIBUTE and t.key == "start_time" for t in terms):
        ordering.append(F("start_time").desc())
    ordering.append(F("pk").desc())
    return queryset.order_by(*ordering)


def run_search(
    *,
    experiment_ids: Sequence[int] | None = None,
    filter_string: str | None = "",
    order_by: Sequence[str] = (),
    view: str = "active",
    status: str | None = None,
) -> QuerySet[Run]:
    """Runs matching MLflow's `filter_string` and `order_by` terms, newest first by default.
    Unpaginated: slice the queryset (LIMIT/OFFSET) and pass the page to runs_with_details()."""
    try:
        clauses = parse_filter(filter_string, RUN_GRAMMAR)
        terms = [parse_order_by(term, RUN_GRAMMAR) for term in order_by]
    except SearchSyntaxError as exc:
        raise InvalidParameterError(str(exc)) from exc
    queryset = _lifecycle_filter(Run.objects.all(), view)
    if experiment_ids is not None:
        queryset = queryset.filter(experiment_id__in=list(experiment_ids))
    if status:
        if status.upper() not in Run.Status.values:
            raise InvalidParameterError(f"status: {status!r} is not one of {Run.Status.values}")
        queryset = queryset.filter(status=status.upper())
    if any(c.key == "artifact_uri" for c in clauses if c.entity == ATTRIBUTE) or any(
        t.key == "artifact_uri" for t in terms if t.entity == ATTRIBUTE
    ):
        queryset = queryset.annotate(
            _artifact_uri=Concat(
                Value(f"{MLFLOW_ARTIFACTS_SCHEME}/"),
                Cast("experiment_id", CharField()),
                Value("/"),
                "run_uuid",
                Value("/artifacts"),
                output_field=CharField(),
            )
        )
    for clause in clauses:
        queryset = _run_clause(queryset, clause)
    return _run_ordering(queryset, terms)


def _experiment_clause(queryset: QuerySet, clause: Clause) -> QuerySet:
    if clause.entity != ATTRIBUTE:
        condition = _entity_exists(ExperimentTag, clause, owner="experiment_id")
        return queryset.filter(~condition if clause.comparator == "IS NULL" else condition)
    column, value = _EXPERIMENT_COLUMNS[clause.key], clause.value
    if clause.key in ("creation_time", "last_update_time"):
        value = ms_to_datetime(int(value))
    elif clause.key == "experiment_id":
        if clause.comparator in ("LIKE", "ILIKE"):
            raise InvalidParameterError("experiment_id supports =, !=, IN and NOT IN")
        try:
            value = [int(v) for v in value] if isinstance(value, tuple) else int(value)
        except ValueError:
            return queryset.none()
    return _compare(queryset, column, clause.comparator, value)


def experiment_search(
    *, filter_string: str | None = "", order_by: Sequence[str] = (), view: str = "active"
) -> QuerySet[Experiment]:
    """Experiments matching `filter_string` (name, tags, creation/update time), newest first."""
    try:
        clauses = parse_filter(filter_string, EXPERIMENT_GRAMMAR)
        terms = [parse_order_by(term, EXPERIMENT_GRAMMAR) for term in order_by]
    except SearchSyntaxError as exc:
        raise InvalidParameterError(str(exc)) from exc
    queryset = _lifecycle_filter(Experiment.objects.all(), view)
    for clause in clauses:
        queryset = _experiment_clause(queryset, clause)
    ordering: list[Any] = []
    for term in terms:
        if term.entity != ATTRIBUTE:
            raise InvalidParameterError("experiments can be ordered by attributes only")
        ordering.append(_ordered(F(_EXPERIMENT_COLUMNS[term.key]), term.ascending))
    if not any(t.key == "creation_time" for t in terms):
        ordering.append(F("created_at").desc())
    ordering.append(F("pk").asc())
    return queryset.order_by(*ordering)


# --- history, artifacts, comparison -------------------------------------------------------------


def metric_history(*, run: Run, key: str) -> QuerySet[Metric]:
    """Every logged value of `key` in the run, by step then timestamp."""
    return Metric.objects.filter(run=run, key=key).order_by("step", "timestamp", "id")


def artifact_get(*, run: Run, path: str) -> Artifact:
    found = Artifact.objects.filter(run=run, path=path).first()
    if found is None:
        raise ResourceDoesNotExistError(f"run {run.run_uuid} has no artifact {path!r}")
    return found


def artifact_listing(*, run: Run, folder: str = "") -> list[dict[str, Any]]:
    """The files and folders directly in `folder` of the run ("" is the root). A file's path,
    or one that holds nothing, lists as empty (what MLflow's clients expect)."""
    folder = artifact_folder(folder)
    prefix = f"{folder}/" if folder else ""
    rows = Artifact.objects.filter(run=run)
    if prefix:
        rows = rows.filter(path__startswith=prefix)
    entries: dict[str, dict[str, Any]] = {}
    for artifact in rows.only("path", "sha256", "size_bytes"):
        head, slash, _ = artifact.path[len(prefix) :].partition("/")
        path = prefix + head
        if slash:
            entries.setdefault(path, {"path": path, "is_dir": True})
        else:
            entries[path] = {
                "path": path,
                "is_dir": False,
                "size_bytes": artifact.size_bytes,
                "sha256": artifact.sha256,
            }
    return [entries[path] for path in sorted(entries)]


def _number(value: float, is_nan: bool) -> float | None:
    return None if is_nan else value


def run_compare(*, run_ids: Sequence[str], history_keys: Sequence[str] = ()) -> dict[str, Any]:
    """Several runs side by side: their params, their final (latest) metrics, and metric
    histories aligned by step (one entry per step, each run's value at it or null).

    `history_keys` picks the metrics whose histories are aligned (default: all of them)."""
    if not 1 <= len(run_ids) <= COMPARE_MAX_RUNS:
        raise InvalidParameterError(f"run_id: give between 1 and {COMPARE_MAX_RUNS} run ids")
    runs = runs_for_ids(list(dict.fromkeys(run_ids)))
    by_pk = {run.pk: run.run_uuid for run in runs}
    params: dict[str, dict[str, str]] = {}
    for run_pk, key, value in Param.objects.filter(run__in=runs).values_list("run", "key", "value"):
        params.setdefault(key, {})[by_pk[run_pk]] = value
    metrics: dict[str, dict[str, Any]] = {}
    latest = LatestMetric.objects.filter(run__in=runs)
    for run_pk, key, value, is_nan, step, stamp in latest.values_list(
        "run", "key", "value", "is_nan", "step", "timestamp"
    ):
        metrics.setdefault(key, {})[by_pk[run_pk]] = {
            "value": _number(value, is_nan),
            "step": step,
            "timestamp": stamp,
        }
    keys = list(history_keys) or sorted(metrics)
    points = Metric.objects.filter(run__in=runs, key__in=keys)
    if points.count() > COMPARE_MAX_HISTORY_ROWS:
        raise InvalidParameterError(
            f"more than {COMPARE_MAX_HISTORY_ROWS} history points: name fewer metrics in `history`"
        )
    aligned: dict[str, dict[int, dict[str, float | None]]] = {key: {} for key in keys}
    for run_pk, key, step, value, is_nan in points.order_by("timestamp", "id").values_list(
        "run", "key", "step", "value", "is_nan"
    ):  # in time order: the last value logged at a step is the one shown
        aligned[key].setdefault(step, {})[by_pk[run_pk]] = _number(value, is_nan)
    return {
        "runs": [
            {
                "run_id": run.run_uuid,
                "name": run.name,
                "experiment_id": run.experiment_id,
                "status": run.status,
                "start_time": run.start_time,
                "end_time": run.end_time,
            }
            for run in runs
        ],
        "params": params,
        "metrics": metrics,
        "histories": {
            key: [{"step": step, "values": steps[step]} for step in sorted(steps)]
            for key, steps in aligned.items()
        },
    }


# --- dashboards ---------------------------------------------------------------------------------


def experiment_run_counts(*, experiment_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per experiment: its active runs and the newest run's start (epoch ms)."""
    from django.db.models import Count

    rows = (
        Run.objects.filter(experiment_id__in=list(experiment_ids), lifecycle=Lifecycle.ACTIVE)
        .values("experiment_id")
        .annotate(runs=Count("id"), last_start=Max("start_time"))
    )
    return {row["experiment_id"]: row for row in rows}


def experiment_metric_keys(*, experiment: Experiment) -> list[str]:
    """Every metric key the experiment's active runs logged, sorted."""
    keys = (
        LatestMetric.objects.filter(run__experiment=experiment, run__lifecycle=Lifecycle.ACTIVE)
        .values_list("key", flat=True)
        .distinct()
    )
    return sorted(keys)


def experiment_param_keys(*, experiment: Experiment) -> list[str]:
    keys = (
        Param.objects.filter(run__experiment=experiment, run__lifecycle=Lifecycle.ACTIVE)
        .values_list("key", flat=True)
        .distinct()
    )
    return sorted(keys)


def run_metric_histories(
    *, run: Run, min_points: int = 2, limit_keys: int = 24
) -> dict[str, list[tuple[int, float | None]]]:
    """The run's metric histories with at least `min_points` points: {key: [(step, value)]}
    in step order (NaN as None); at most `limit_keys` keys."""
    from django.db.models import Count

    keys = list(
        Metric.objects.filter(run=run)
        .values("key")
        .annotate(n=Count("id"))
        .filter(n__gte=min_points)
        .order_by("key")
        .values_list("key", flat=True)[:limit_keys]
    )
    histories: dict[str, list[tuple[int, float | None]]] = {key: [] for key in keys}
    points = Metric.objects.filter(run=run, key__in=keys).order_by("key", "step", "timestamp", "id")
    for key, step, value, is_nan in points.values_list("key", "step", "value", "is_nan"):
        histories[key].append((step, _number(value, is_nan)))
    return histories


def run_artifacts(*, run: Run) -> QuerySet[Artifact]:
    """Every artifact file of the run, by path."""
    return Artifact.objects.filter(run=run).order_by("path")
