"""The tracker's services: the rules that the native API, the MLflow API and training share."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import pytest

from experiments import selectors, services
from experiments.errors import (
    InvalidParameterError,
    PayloadTooLargeError,
    ResourceAlreadyExistsError,
)
from experiments.models import Artifact, Experiment, LatestMetric, Metric, Param, Run, RunTag
from features.models import FeatureView
from tests.support import run_concurrently

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(user: Any) -> Run:
    experiment = services.experiment_get_or_create(name="direction")
    return services.run_create(experiment=experiment, name="walk-forward", user=user)


def _written(run: Run) -> tuple[int, int, int]:
    return (
        Param.objects.filter(run=run).count(),
        Metric.objects.filter(run=run).count(),
        RunTag.objects.filter(run=run).exclude(key__startswith="mlflow.").count(),
    )


def test_get_or_create_returns_the_same_experiment_and_refuses_a_deleted_one() -> None:
    first = services.experiment_get_or_create(name="direction", tags={"desk": "fx"})
    assert services.experiment_get_or_create(name="direction") == first
    assert first.artifact_location == f"mlflow-artifacts:/{first.pk}"
    assert dict(first.tags.values_list("key", "value")) == {"desk": "fx"}
    with pytest.raises(ResourceAlreadyExistsError):
        services.experiment_create(name="direction")
    services.experiment_delete(experiment=first)
    with pytest.raises(InvalidParameterError, match="deleted"):
        services.experiment_get_or_create(name="direction")


def test_a_foreign_artifact_location_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="stores artifacts itself"):
        services.experiment_create(name="s3", artifact_location="s3://bucket/x")
    assert not Experiment.objects.exists()


def test_the_default_experiment_is_id_zero_and_created_on_first_use() -> None:
    default = selectors.experiment_get(experiment_id="0")
    assert (default.pk, default.name) == (0, "Default")
    assert selectors.experiment_get(experiment_id=0) == default
    for not_an_id in (False, True, 0.0, None, [0]):  # int(False) == 0: the Default experiment
        with pytest.raises(InvalidParameterError, match="is not an experiment id"):
            selectors.experiment_get(experiment_id=not_an_id)


def test_a_run_mirrors_mlflow_tags_into_its_columns(user: Any) -> None:
    experiment = services.experiment_get_or_create(name="direction")
    parent = services.run_create(experiment=experiment, user=user)
    assert parent.name == f"run-{parent.run_uuid[:8]}"
    assert parent.user_name == user.username
    child = services.run_create(
        experiment=experiment,
        tags={
            "mlflow.runName": "fold-1",
            "mlflow.parentRunId": parent.run_uuid,
            "mlflow.user": "researcher",
            "mlflow.source.name": "train.py",
        },
    )
    assert (child.name, child.parent, child.user_name, child.source) == (
        "fold-1",
        parent,
        "researcher",
        "train.py",
    )
    with pytest.raises(InvalidParameterError, match="different values"):
        services.run_create(experiment=experiment, name="a", tags={"mlflow.runName": "b"})
    with pytest.raises(InvalidParameterError, match="no run with id"):
        services.run_create(experiment=experiment, tags={"mlflow.parentRunId": "0" * 32})


def test_params_are_immutable_and_a_refused_batch_writes_nothing(run: Run) -> None:
    services.run_log_batch(run=run, params={"lr": 0.01, "depth": 3})
    services.run_log_batch(run=run, params={"lr": "0.01"})  # the same value again: fine
    before = _written(run)
    with pytest.raises(InvalidParameterError, match="Changing param values is not allowed"):
        services.run_log_batch(
            run=run,
            params={"lr": 0.02, "new": 1},
            metrics={"loss": 0.5},
            tags={"stage": "research"},
        )
    assert _written(run) == before == (2, 0, 0)
    assert Param.objects.get(run=run, key="lr").value == "0.01"


def test_a_bad_point_anywhere_in_a_batch_writes_nothing(run: Run) -> None:
    points = [{"key": "loss", "value": 0.1, "step": i} for i in range(50)]
    points[37]["value"] = "abc"
    with pytest.raises(InvalidParameterError, match=r"metrics\[37\].value: 'abc' is not a number"):
        services.run_log_batch(run=run, metrics=points, params={"lr": 1})
    assert _written(run) == (0, 0, 0)
    with pytest.raises(InvalidParameterError, match="duplicate key 'lr'"):
        services.run_log_batch(run=run, params=[{"key": "lr", "value": "1"}] * 2)


def test_batch_limits_are_mlflows_on_its_api_and_larger_natively(run: Run) -> None:
    metrics = [{"key": "m", "value": 1.0, "step": i} for i in range(1001)]
    with pytest.raises(InvalidParameterError, match="at most 1000 metrics"):
        services.run_log_batch(run=run, metrics=metrics, limits=services.MLFLOW_LIMITS)
    with pytest.raises(InvalidParameterError, match="at most 100 params"):
        services.run_log_batch(
            run=run, params={f"p{i}": i for i in range(101)}, limits=services.MLFLOW_LIMITS
        )
    with pytest.raises(InvalidParameterError, match="at most 1000 metrics, params, and tags"):
        services.run_log_batch(
            run=run,
            metrics=metrics[:950],
            params={f"p{i}": i for i in range(51)},
            limits=services.MLFLOW_LIMITS,
        )
    assert _written(run) == (0, 0, 0)
    services.run_log_batch(
        run=run, metrics=[{"key": "m", "value": 1.0, "step": i} for i in range(10_000)]
    )
    assert Metric.objects.filter(run=run).count() == 10_000
    with pytest.raises(InvalidParameterError, match="at most 10000 metrics"):
        services.run_log_batch(run=run, metrics=metrics * 10)


def test_the_latest_metric_is_the_highest_step_then_timestamp_then_value(run: Run) -> None:
    services.run_log_batch(run=run, metrics=[{"key": "loss", "value": 0.5, "step": 3}])
    services.run_log_batch(run=run, metrics=[{"key": "loss", "value": 0.9, "step": 1}])  # older
    latest = LatestMetric.objects.get(run=run, key="loss")
    assert (latest.step, latest.value) == (3, 0.5)
    services.run_log_batch(
        run=run,
        metrics=[{"key": "loss", "value": 0.4, "step": 3, "timestamp": latest.timestamp + 1}],
    )
    latest.refresh_from_db()
    assert (latest.step, latest.value) == (3, 0.4)
    assert Metric.objects.filter(run=run, key="loss").count() == 3


def test_nan_and_infinity_are_kept_as_mlflow_keeps_them(run: Run) -> None:
    services.run_log_batch(
        run=run, metrics={"undefined": math.nan, "up": math.inf, "down": "-Infinity"}
    )
    stored = {m.key: (m.value, m.is_nan) for m in Metric.objects.filter(run=run)}
    assert stored == {
        "undefined": (0.0, True),
        "up": (1.7976931348623157e308, False),
        "down": (-1.7976931348623157e308, False),
    }


def test_deleted_runs_take_no_more_logs(run: Run) -> None:
    services.run_delete(run=run)
    with pytest.raises(InvalidParameterError, match="must be in the 'active' state"):
        services.run_log_batch(run=run, metrics={"loss": 1.0})
    services.run_restore(run=run)
    services.run_log_batch(run=run, metrics={"loss": 1.0})


def test_finishing_a_run_sets_status_and_end_time(run: Run) -> None:
    services.run_finish(run=run, status=Run.Status.FAILED)
    run.refresh_from_db()
    assert run.status == "FAILED" and run.end_time >= run.start_time
    with pytest.raises(InvalidParameterError):
        services.run_finish(run=run, status="RUNNING")
    with pytest.raises(InvalidParameterError):
        services.run_update(run=run, status="PAUSED")


def test_a_run_links_the_feature_view_version_and_training_set_it_used(run: Run) -> None:
    view = FeatureView.objects.create(name="core_technical", version=3)
    definition = {
        "symbols": ["AAPL", "SPY"],
        "window": {"start": "2024-01-01", "end": "2024-12-31"},
        "label": "next_bar_direction",
    }
    services.run_link_feature_view(run=run, feature_view=view, training_set=definition)
    run.refresh_from_db()
    assert run.feature_view == view
    assert run.training_set == {**definition, "view": "core_technical", "version": 3}
    with pytest.raises(InvalidParameterError, match="disagrees with the linked feature view"):
        services.run_link_feature_view(run=run, feature_view=view, training_set={"version": 2})
    with pytest.raises(InvalidParameterError, match="JSON object"):
        services.run_link_feature_view(run=run, feature_view=view, training_set=["x"])  # type: ignore[arg-type]


def test_artifacts_are_content_addressed_and_hashed_on_the_server(
    run: Run, artifact_root: Path
) -> None:
    content = b"weights" * 1000
    first = services.run_artifact_store(run=run, name="model/model.bin", data=content)
    second = services.run_artifact_store(run=run, name="copy/model.bin", data=iter([content]))
    assert first.sha256 == second.sha256 == hashlib.sha256(content).hexdigest()
    blobs = [p for p in (artifact_root / "sha256").rglob("*") if p.is_file()]
    assert [b.name for b in blobs] == [first.sha256]  # stored once
    assert not list((artifact_root / "tmp").iterdir())
    again = services.run_artifact_store(run=run, name="model/model.bin", data=b"v2")
    assert again.pk == first.pk and again.sha256 == hashlib.sha256(b"v2").hexdigest()
    assert (artifact_root / "sha256" / first.sha256[:2] / first.sha256).read_bytes() == content


def test_bad_artifact_names_and_clashes_store_nothing(run: Run, artifact_root: Path) -> None:
    services.run_artifact_store(run=run, name="model", data=b"a file")
    for name in ("../x", "model/inside", "/abs", "a\\b"):
        with pytest.raises(InvalidParameterError):
            services.run_artifact_store(run=run, name=name, data=b"x")
    services.run_artifact_store(run=run, name="dir/file", data=b"y")
    with pytest.raises(InvalidParameterError, match="is a folder"):
        services.run_artifact_store(run=run, name="dir", data=b"z")
    assert set(Artifact.objects.values_list("path", flat=True)) == {"model", "dir/file"}
    assert len([p for p in artifact_root.rglob("*") if p.is_file()]) == 2


def test_an_artifact_over_the_limit_leaves_no_file(
    run: Run, artifact_root: Path, settings: Any
) -> None:
    settings.ARTIFACT_MAX_UPLOAD_MB = 1
    with pytest.raises(PayloadTooLargeError):
        services.run_artifact_store(run=run, name="big.bin", data=iter([b"x" * 700_000] * 2))
    assert not Artifact.objects.exists()
    assert not [p for p in artifact_root.rglob("*") if p.is_file()]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_of_different_values_of_one_param_cannot_both_win(run: Run) -> None:
    outcomes: list[str] = []

    def log(value: str) -> None:
        try:
            services.run_log_batch(run=Run.objects.get(pk=run.pk), params={"lr": value})
            outcomes.append("ok")
        except InvalidParameterError:
            outcomes.append("refused")

    values = iter(["0.1", "0.2"] * 4)
    run_concurrently(lambda: log(next(values)), 8)
    assert Param.objects.filter(run=run, key="lr").count() == 1
    winner = Param.objects.get(run=run, key="lr").value
    assert outcomes.count("ok") == 4 and outcomes.count("refused") == 4, (winner, outcomes)
