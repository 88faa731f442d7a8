"""Run and experiment search, answered in SQL: filters, ordering (NaN and missing metrics last),
lifecycle views, pages, and a constant number of queries per page."""

from __future__ import annotations

import math
from typing import Any

import pytest

from experiments import selectors, services
from experiments.errors import InvalidParameterError
from experiments.models import Experiment, Run

pytestmark = pytest.mark.django_db

RUNS = [
    # name, model, sharpe, desk, status
    ("gbm-a", "gbm", 1.5, "fx", "FINISHED"),
    ("gbm-b", "gbm", 0.7, "FX", "FINISHED"),
    ("gbm-c", "gbm", 2.5, "rates", "FAILED"),
    ("lr-a", "lr", math.nan, "fx", "FINISHED"),
    ("lr-b", "lr", None, None, "RUNNING"),
]


@pytest.fixture
def experiment(user: Any) -> Experiment:
    experiment = services.experiment_get_or_create(name="search")
    for offset, (name, model, sharpe, desk, status) in enumerate(RUNS):
        run = services.run_create(
            experiment=experiment, name=name, user=user, start_time_ms=1_700_000_000_000 + offset
        )
        services.run_log_batch(
            run=run,
            params={"model": model},
            metrics={} if sharpe is None else {"sharpe": sharpe},
            tags={} if desk is None else {"desk": desk},
        )
        if status != "RUNNING":
            services.run_finish(run=run, status=status)
    return experiment


def names(experiment: Experiment, filter_string: str = "", *order_by: str, **kwargs: Any) -> list:
    found = selectors.run_search(
        experiment_ids=[experiment.pk], filter_string=filter_string, order_by=order_by, **kwargs
    )
    return [run.name for run in found]


def test_the_default_order_is_newest_first(experiment: Experiment) -> None:
    assert names(experiment) == ["lr-b", "lr-a", "gbm-c", "gbm-b", "gbm-a"]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.sharpe > 1", {"gbm-a", "gbm-c"}),
        ("metrics.sharpe <= 1.5 and params.model = 'gbm'", {"gbm-a", "gbm-b"}),
        ("metrics.sharpe != 1.5", {"gbm-b", "gbm-c", "lr-a"}),  # NaN differs from everything
        ("params.model != 'gbm'", {"lr-a", "lr-b"}),
        ("tags.desk = 'fx'", {"gbm-a", "lr-a"}),
        ("tags.desk LIKE 'f%'", {"gbm-a", "lr-a"}),  # LIKE is case-sensitive, as in MLflow
        ("tags.desk ILIKE 'f%'", {"gbm-a", "gbm-b", "lr-a"}),
        ("tags.desk IS NULL", {"lr-b"}),
        ("tags.desk IS NOT NULL and params.model = 'lr'", {"lr-a"}),
        ("attributes.status = 'FAILED'", {"gbm-c"}),
        ("status != 'FINISHED'", {"gbm-c", "lr-b"}),
        ("run_name LIKE 'gbm-_'", {"gbm-a", "gbm-b", "gbm-c"}),
        ("attributes.run_name ILIKE 'LR%'", {"lr-a", "lr-b"}),
        ("start_time >= 1700000000003", {"lr-a", "lr-b"}),
        ("created < 1700000000001", {"gbm-a"}),
        ("end_time > 0", {"gbm-a", "gbm-b", "gbm-c", "lr-a"}),
        ("user_id = 'analyst'", {r[0] for r in RUNS}),
        ("metrics.missing > 0", set()),
    ],
)
def test_filters(experiment: Experiment, filter_string: str, expected: set[str]) -> None:
    assert set(names(experiment, filter_string)) == expected


def test_run_id_and_artifact_uri_attributes(experiment: Experiment) -> None:
    first, second = Run.objects.filter(name__in=["gbm-a", "lr-b"]).order_by("name")
    assert set(names(experiment, f"run_id IN ('{first.run_uuid}', '{second.run_uuid}')")) == {
        "gbm-a",
        "lr-b",
    }
    assert names(experiment, f"run_id NOT IN ('{first.run_uuid}')", "run_name")[0] == "gbm-b"
    assert names(experiment, f"attributes.artifact_uri = '{first.artifact_uri}'") == ["gbm-a"]
    assert names(experiment, "artifact_uri LIKE 'mlflow-artifacts:/%'", "run_name")[0] == "gbm-a"


def test_ordering_by_metrics_puts_nan_then_missing_last_both_ways(experiment: Experiment) -> None:
    assert names(experiment, "", "metrics.sharpe ASC") == [
        "gbm-b",
        "gbm-a",
        "gbm-c",
        "lr-a",
        "lr-b",
    ]
    assert names(experiment, "", "metrics.sharpe DESC") == [
        "gbm-c",
        "gbm-a",
        "gbm-b",
        "lr-a",
        "lr-b",
    ]


def test_ordering_by_params_tags_and_attributes(experiment: Experiment) -> None:
    assert names(experiment, "", "params.model DESC", "metrics.sharpe DESC") == [
        "lr-a", "lr-b", "gbm-c", "gbm-a", "gbm-b",
    ]  # fmt: skip
    assert names(experiment, "", "tags.desk ASC", "run_name")[-1] == "lr-b"  # no tag: last
    assert names(experiment, "", "attributes.run_name DESC") == [
        "lr-b", "lr-a", "gbm-c", "gbm-b", "gbm-a",
    ]  # fmt: skip
    assert names(experiment, "", "start_time ASC")[0] == "gbm-a"


def test_lifecycle_views(experiment: Experiment) -> None:
    services.run_delete(run=Run.objects.get(name="gbm-b"))
    assert "gbm-b" not in names(experiment)
    assert names(experiment, view="deleted") == ["gbm-b"]
    assert len(names(experiment, view="all")) == 5
    with pytest.raises(InvalidParameterError, match="view"):
        names(experiment, view="archived")


def test_a_page_costs_the_same_few_queries_however_many_filters(
    experiment: Experiment, django_assert_num_queries: Any
) -> None:
    found = selectors.run_search(
        experiment_ids=[experiment.pk],
        filter_string="metrics.sharpe > 0 and params.model = 'gbm' and tags.desk IS NOT NULL",
        order_by=["metrics.sharpe DESC", "params.model"],
    )
    with django_assert_num_queries(4):  # the page, then its params, tags and latest metrics
        page = selectors.runs_with_details(found[0:2])
        details = [(r.name, len(r.details.params), len(r.details.metrics)) for r in page]
    assert details == [("gbm-c", 1, 1), ("gbm-a", 1, 1)]
    assert [r.name for r in found[2:4]] == ["gbm-b"]


def test_bad_search_input_is_an_invalid_parameter(experiment: Experiment) -> None:
    with pytest.raises(InvalidParameterError, match="Invalid attribute key"):
        names(experiment, "color = 'red'")
    with pytest.raises(InvalidParameterError, match="Invalid order_by"):
        names(experiment, "", "metrics.sharpe upward")


def test_experiment_search() -> None:
    for name, desk in (("alpha", "fx"), ("beta", "rates"), ("gamma", "fx")):
        services.experiment_create(name=name, tags={"desk": desk})

    def found(filter_string: str = "", *order_by: str, view: str = "active") -> list[str]:
        rows = selectors.experiment_search(
            filter_string=filter_string, order_by=order_by, view=view
        )
        return [e.name for e in rows]

    assert found() == ["gamma", "beta", "alpha"]  # newest first
    assert found("tags.desk = 'fx'", "name ASC") == ["alpha", "gamma"]
    assert found("name LIKE '%a'", "name DESC") == ["gamma", "beta", "alpha"]
    alpha = Experiment.objects.get(name="alpha")
    assert found(f"experiment_id = '{alpha.pk}'") == ["alpha"]
    assert found("creation_time > 0", "experiment_id") == ["alpha", "beta", "gamma"]
    services.experiment_delete(experiment=alpha)
    assert found(view="deleted") == ["alpha"]
    with pytest.raises(InvalidParameterError):
        found("metrics.x > 1")
