"""Experiments dashboards: experiment list, an experiment's runs table (sortable by any metric,
param or attribute), run compare (metric curves over steps, params diff, parallel coordinates)
and run detail with its artifacts. Reads only, through experiments.selectors."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from experiments.charts import metric_curves, metric_history, parallel_coordinates
from experiments.constants import COMPARE_MAX_RUNS
from experiments.errors import InvalidParameterError, ResourceDoesNotExistError
from experiments.models import Run
from experiments.selectors import (
    experiment_get,
    experiment_metric_keys,
    experiment_param_keys,
    experiment_run_counts,
    experiment_search,
    run_artifacts,
    run_compare,
    run_get,
    run_metric_histories,
    run_search,
    runs_with_details,
)
from tradingsite.dashboard.access import dashboard_view
from tradingsite.dashboard.figures import figure_json
from tradingsite.dashboard.roles import EXPERIMENTS_PERMISSION

RUNS_PER_PAGE = 50
EXPERIMENTS_PER_PAGE = 50
PARAM_COLUMNS = 6
ATTRIBUTE_SORTS = {"start_time", "end_time", "run_name", "status"}


@dashboard_view(EXPERIMENTS_PERMISSION)
def experiment_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(experiment_search(), EXPERIMENTS_PER_PAGE).get_page(request.GET.get("page"))
    counts = experiment_run_counts(experiment_ids=[e.pk for e in page.object_list])
    rows = [{"experiment": e, **counts.get(e.pk, {"runs": 0, "last_start": None})} for e in page]
    return render(request, "experiments/experiment_list.html", {"page": page, "rows": rows})


def order_term(sort: str, direction: str) -> str:
    """A column of the runs table -> an order_by term of MLflow's grammar (keys quoted)."""
    descending = "DESC" if direction != "asc" else "ASC"
    entity, _, key = sort.partition(".")
    if entity in ("metrics", "params") and key and "`" not in key:
        return f"{entity}.`{key}` {descending}"
    if sort in ATTRIBUTE_SORTS:
        return f"{sort} {descending}"
    return "start_time DESC"


def _run_row(run: Run) -> dict[str, Any]:
    return {
        "run": run,
        "metrics": {
            key: None if is_nan else value for key, value, is_nan, *_ in run.details.metrics
        },
        "params": dict(run.details.params),
        "duration_ms": None if run.end_time is None else run.end_time - run.start_time,
    }


@dashboard_view(EXPERIMENTS_PERMISSION)
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    try:
        experiment = experiment_get(experiment_id=experiment_id)
    except ResourceDoesNotExistError as exc:
        raise Http404(str(exc)) from exc
    sort = request.GET.get("sort", "start_time")
    direction = "asc" if request.GET.get("dir") == "asc" else "desc"
    runs = run_search(experiment_ids=[experiment.pk], order_by=[order_term(sort, direction)])
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    all_keys = experiment_metric_keys(experiment=experiment)
    show_all = request.GET.get("all") == "1"
    metric_keys = all_keys if show_all else [k for k in all_keys if "/" not in k] or all_keys
    context = {
        "experiment": experiment,
        "page": page,
        "rows": [_run_row(run) for run in runs_with_details(page.object_list)],
        "metric_keys": metric_keys,
        "hidden_metrics": len(all_keys) - len(metric_keys),
        "param_keys": experiment_param_keys(experiment=experiment)[:PARAM_COLUMNS],
        "sort": sort,
        "dir": direction,
        "show_all": show_all,
        "compare_max": COMPARE_MAX_RUNS,
    }
    return render(request, "experiments/experiment_detail.html", context)


def _compared(run_ids: list[str]) -> tuple[dict[str, Any], str]:
    """run_compare with every metric's history; past the comparison's size limit, the first
    few metrics' only (and a note saying so)."""
    try:
        return run_compare(run_ids=run_ids), ""
    except InvalidParameterError as exc:
        if "history points" not in str(exc):
            raise
    first = run_compare(run_ids=run_ids, history_keys=["__none__"])
    keys = sorted(first["metrics"])[:6]
    note = f"Too many history points to draw every metric: showing {', '.join(keys)}."
    return run_compare(run_ids=run_ids, history_keys=keys), note


@dashboard_view(EXPERIMENTS_PERMISSION)
def run_compare_view(request: HttpRequest) -> HttpResponse:
    run_ids = list(dict.fromkeys(r for r in request.GET.getlist("run") if r))
    if not run_ids:
        return render(request, "experiments/run_compare.html", {"error": "Pick runs to compare."})
    try:
        compared, note = _compared(run_ids[:COMPARE_MAX_RUNS])
    except (InvalidParameterError, ResourceDoesNotExistError) as exc:
        return render(request, "experiments/run_compare.html", {"error": str(exc)}, status=400)
    runs, params, metrics = compared["runs"], compared["params"], compared["metrics"]
    ids = [r["run_id"] for r in runs]
    only_diff = request.GET.get("diff") == "1"
    param_rows = []
    for key in sorted(params):
        values = [params[key].get(run_id) for run_id in ids]
        changed = len(set(values)) > 1
        if changed or not only_diff:
            param_rows.append({"key": key, "values": values, "changed": changed})
    metric_rows = [
        {"key": key, "values": [(metrics[key].get(run_id) or {}).get("value") for run_id in ids]}
        for key in sorted(metrics)
        if "/" not in key
    ]
    color = request.GET.get("color") or ("roc_auc" if "roc_auc" in metrics else None)
    context = {
        "runs": runs,
        "param_rows": param_rows,
        "metric_rows": metric_rows,
        "only_diff": only_diff,
        "note": note + (" Only the first runs are compared." if len(run_ids) > len(ids) else ""),
        "curves_chart": figure_json(metric_curves(compared["histories"], runs)),
        "parallel_chart": figure_json(
            parallel_coordinates(runs, params, metrics, color_metric=color)
        ),
        "color": color,
    }
    return render(request, "experiments/run_compare.html", context)


@dashboard_view(EXPERIMENTS_PERMISSION)
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    try:
        run = run_get(run_id=run_id)
    except ResourceDoesNotExistError as exc:
        raise Http404(str(exc)) from exc
    (run,) = runs_with_details([run])
    row = _run_row(run)
    context = {
        "run": run,
        "experiment": run.experiment,
        "headline": sorted((k, v) for k, v in row["metrics"].items() if "/" not in k),
        "detailed": sorted((k, v) for k, v in row["metrics"].items() if "/" in k),
        "params": sorted(run.details.params),
        "tags": sorted(run.details.tags),
        "duration_ms": row["duration_ms"],
        "artifacts": run_artifacts(run=run),
        "versions": run.model_versions.select_related("model").order_by("model__name", "version"),
        "history_chart": figure_json(metric_history(run_metric_histories(run=run))),
    }
    return render(request, "experiments/run_detail.html", context)
