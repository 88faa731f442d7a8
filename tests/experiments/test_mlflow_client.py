"""The official MLflow client (mlflow-skinny 3.x) against a live tradingsite: every call a training
script makes, over HTTP, authenticated with a personal API token as MLFLOW_TRACKING_TOKEN."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import pytest
import requests

from experiments.models import Artifact, Experiment, LatestMetric, Metric, Param, Run, RunTag

pytestmark = pytest.mark.django_db(transaction=True)


def _raw(
    url: str, token: str, path: str, method: str = "POST", **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """A request the client would never send (it checks some input itself): the server must
    refuse it. Returns (status, JSON body)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with requests.request(method, url + path, headers=headers, timeout=30, **kwargs) as answer:
        return answer.status_code, answer.json()


def test_experiments_are_created_found_searched_renamed_and_deleted(mlflow_server: str) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    momentum = mlflow.set_experiment("momentum")
    assert momentum.lifecycle_stage == "active"
    assert momentum.artifact_location == f"mlflow-artifacts:/{momentum.experiment_id}"
    assert Experiment.objects.get(name="momentum").pk == int(momentum.experiment_id)
    assert mlflow.set_experiment("momentum").experiment_id == momentum.experiment_id

    reversion_id = mlflow.create_experiment("mean-reversion", tags={"desk": "fx"})
    with pytest.raises(MlflowException) as duplicate:
        mlflow.create_experiment("mean-reversion")
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"

    found = mlflow.get_experiment_by_name("mean-reversion")
    assert (found.experiment_id, found.tags) == (reversion_id, {"desk": "fx"})
    assert mlflow.get_experiment_by_name("no-such-experiment") is None
    assert mlflow.get_experiment(reversion_id).name == "mean-reversion"

    def names(**kwargs: Any) -> list[str]:
        return [e.name for e in mlflow.search_experiments(**kwargs)]

    assert names(filter_string="name LIKE 'mean%'") == ["mean-reversion"]
    assert names(filter_string="tags.desk = 'fx'") == ["mean-reversion"]
    assert names(order_by=["name DESC"]) == ["momentum", "mean-reversion"]
    assert names(max_results=1, order_by=["name ASC"]) == ["mean-reversion"]

    client = MlflowClient()
    client.set_experiment_tag(momentum.experiment_id, "owner", "quant-team")
    client.set_experiment_tag(momentum.experiment_id, "scratch", "x")
    client.delete_experiment_tag(momentum.experiment_id, "scratch")
    client.rename_experiment(momentum.experiment_id, "momentum-v2")
    renamed = client.get_experiment(momentum.experiment_id)
    assert (renamed.name, renamed.tags) == ("momentum-v2", {"owner": "quant-team"})

    client.delete_experiment(reversion_id)
    assert names() == ["momentum-v2"]
    assert names(view_type=ViewType.DELETED_ONLY) == ["mean-reversion"]
    client.restore_experiment(reversion_id)
    assert sorted(names()) == ["mean-reversion", "momentum-v2"]


def test_runs_log_params_metrics_tags_batches_and_nest(mlflow_server: str) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric as MlflowMetric
    from mlflow.entities import Param as MlflowParam
    from mlflow.entities import RunTag as MlflowTag

    mlflow.set_experiment("gbm-direction")
    with mlflow.start_run(run_name="walk-forward") as parent:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 3, "model": "gbm"})
        mlflow.log_param("lr", 0.01)  # the same value again is fine
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"accuracy": 0.55, "sharpe": 1.2}, step=4)
        mlflow.log_metric("undefined", float("nan"))
        mlflow.log_metric("unbounded", float("inf"))
        mlflow.set_tag("desk", "fx")
        mlflow.set_tags({"universe": "sp500", "stage": "research"})
        with mlflow.start_run(run_name="fold-1", nested=True) as child:
            mlflow.log_metric("loss", 0.3)
    with pytest.raises(ZeroDivisionError), mlflow.start_run(run_name="broken") as broken:
        raise ZeroDivisionError

    client = MlflowClient()
    run = client.get_run(parent.info.run_id)
    assert len(run.info.run_id) == 32
    assert (run.info.status, run.info.run_name) == ("FINISHED", "walk-forward")
    assert run.info.end_time >= run.info.start_time
    assert run.data.params == {"lr": "0.01", "depth": "3", "model": "gbm"}
    assert run.data.metrics["loss"] == pytest.approx(0.2)  # the latest step
    assert (run.data.metrics["accuracy"], run.data.metrics["sharpe"]) == (0.55, 1.2)
    assert math.isnan(run.data.metrics["undefined"])
    assert run.data.metrics["unbounded"] == 1.7976931348623157e308  # MLflow's SQL stores ±inf so
    assert {"desk": "fx", "universe": "sp500", "stage": "research"}.items() <= run.data.tags.items()
    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]

    nested = client.get_run(child.info.run_id)
    assert nested.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert Run.objects.get(run_uuid=child.info.run_id).parent.run_uuid == parent.info.run_id
    assert client.get_run(broken.info.run_id).info.status == "FAILED"

    batch_run = client.create_run(run.info.experiment_id, run_name="batch")
    batch_id = batch_run.info.run_id
    client.log_batch(
        batch_id,
        metrics=[MlflowMetric("pnl", float(i), 1_700_000_000_000 + i, i) for i in range(1000)],
        params=[MlflowParam(f"p{i}", str(i)) for i in range(100)],
        tags=[MlflowTag(f"t{i}", str(i)) for i in range(100)],
    )
    # Beyond MLflow's per-request limits the client splits the batch itself; all of it lands.
    client.log_batch(
        batch_id, metrics=[MlflowMetric("ret", 0.5, 1_700_000_000_000, i) for i in range(2500)]
    )
    assert Metric.objects.filter(run__run_uuid=batch_id, key="pnl").count() == 1000
    assert Metric.objects.filter(run__run_uuid=batch_id, key="ret").count() == 2500
    assert Param.objects.filter(run__run_uuid=batch_id).count() == 100
    assert RunTag.objects.filter(run__run_uuid=batch_id, key__startswith="t").count() == 100
    latest = LatestMetric.objects.get(run__run_uuid=batch_id, key="pnl")
    assert (latest.step, latest.value) == (999, 999.0)
    client.set_terminated(batch_id, status="KILLED")
    assert client.get_run(batch_id).info.status == "KILLED"
    client.delete_tag(batch_id, "t0")
    assert "t0" not in client.get_run(batch_id).data.tags
    client.delete_run(batch_id)
    assert client.get_run(batch_id).info.lifecycle_stage == "deleted"
    client.restore_run(batch_id)
    assert client.get_run(batch_id).info.lifecycle_stage == "active"


def test_search_runs_filters_orders_and_pages_in_the_server(mlflow_server: str) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    experiment_id = mlflow.set_experiment("search").experiment_id
    specs = [
        ("gbm-a", "gbm", 1.5, "fx"),
        ("gbm-b", "gbm", 0.7, "fx"),
        ("gbm-c", "gbm", 2.5, "rates"),
        ("lr-a", "lr", 1.1, "fx"),
        ("lr-b", "lr", 3.0, None),
    ]
    ids = {}
    for name, model, sharpe, desk in specs:
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_param("model", model)
            mlflow.log_metric("sharpe", sharpe)
            if desk:
                mlflow.set_tag("desk", desk)
        ids[name] = run.info.run_id
    with pytest.raises(RuntimeError), mlflow.start_run(run_name="crashed") as crashed:
        raise RuntimeError

    frame = mlflow.search_runs(
        experiment_names=["search"],
        filter_string="metrics.sharpe > 1 and params.model = 'gbm'",
        order_by=["metrics.sharpe DESC"],
    )
    assert list(frame["tags.mlflow.runName"]) == ["gbm-c", "gbm-a"]
    assert list(frame["metrics.sharpe"]) == [2.5, 1.5]

    client = MlflowClient()

    def run_names(filter_string: str = "", order_by: list[str] | None = None) -> list[str]:
        runs = client.search_runs([experiment_id], filter_string, order_by=order_by)
        return [r.info.run_name for r in runs]

    assert run_names("tags.desk LIKE 'f%'", ["metrics.sharpe ASC"]) == ["gbm-b", "lr-a", "gbm-a"]
    assert run_names("tags.desk IS NULL", ["attributes.run_name"]) == ["crashed", "lr-b"]
    assert run_names("attributes.status = 'FAILED'") == ["crashed"]
    assert run_names("attributes.run_name ILIKE 'LR-%'", ["run_name DESC"]) == ["lr-b", "lr-a"]
    assert run_names(f"run_id IN ('{ids['gbm-a']}', '{ids['lr-b']}')", ["start_time"]) == [
        "gbm-a",
        "lr-b",
    ]
    assert run_names("metrics.sharpe <= 1.1 and params.model != 'gbm'") == ["lr-a"]
    assert run_names(order_by=["params.model DESC", "metrics.sharpe DESC"])[:2] == ["lr-b", "lr-a"]
    # Runs without the metric sort last in both directions, as in MLflow.
    assert run_names(order_by=["metrics.sharpe DESC"])[-1] == "crashed"
    assert run_names(order_by=["metrics.sharpe ASC"])[-1] == "crashed"

    first = client.search_runs([experiment_id], max_results=4, order_by=["attributes.run_name"])
    assert first.token
    rest = client.search_runs(
        [experiment_id], max_results=4, order_by=["attributes.run_name"], page_token=first.token
    )
    assert rest.token is None
    paged = [r.info.run_name for r in [*first, *rest]]
    assert paged == sorted(s[0] for s in specs) + ["crashed"] or paged == sorted(
        [*(s[0] for s in specs), "crashed"]
    )
    assert len(paged) == len(set(paged)) == 6
    assert crashed.info.run_id in {r.info.run_id for r in [*first, *rest]}

    with pytest.raises(MlflowException) as bad:
        client.search_runs([experiment_id], "metrics.sharpe > 'high'")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"


def test_artifacts_upload_list_and_download_byte_for_byte(
    mlflow_server: str, tmp_path: Path, artifact_root: Path
) -> None:
    import mlflow
    from mlflow import MlflowClient

    report = tmp_path / "report.txt"
    report.write_bytes(b"sharpe 1.4\n")
    model_dir = tmp_path / "model"
    (model_dir / "data").mkdir(parents=True)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    (model_dir / "data" / "weights.bin").write_bytes(bytes(range(256)) * 64)

    mlflow.set_experiment("artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(report))
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        mlflow.log_text("the notes", "notes/readme.md")
    run_id = run.info.run_id

    client = MlflowClient()
    top = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert top == {("report.txt", False), ("model", True), ("notes", True)}
    inside = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "model")}
    assert inside == {("model/MLmodel", False, 12), ("model/data", True, None)}
    assert client.list_artifacts(run_id, "report.txt") == []

    out = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl")))
    assert (out / "report.txt").read_bytes() == report.read_bytes()
    weights = (model_dir / "data" / "weights.bin").read_bytes()
    assert (out / "model" / "data" / "weights.bin").read_bytes() == weights
    assert (out / "notes" / "readme.md").read_text() == "the notes"
    one = client.download_artifacts(run_id, "model/MLmodel", str(tmp_path / "one"))
    assert Path(one).read_text() == "flavors: {}\n"

    stored = Artifact.objects.get(run__run_uuid=run_id, path="model/data/weights.bin")
    assert stored.sha256 == hashlib.sha256(weights).hexdigest()
    assert stored.size_bytes == len(weights)
    assert (artifact_root / "sha256" / stored.sha256[:2] / stored.sha256).read_bytes() == weights


def test_bad_input_gets_mlflow_errors_and_writes_nothing(
    mlflow_server: str, api_token: str, artifact_root: Path
) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    with pytest.raises(MlflowException) as unknown:
        client.get_run("0" * 32)
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as unknown_log:
        client.log_param("f" * 32, "lr", "0.1")
    assert unknown_log.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    mlflow.set_experiment("errors")
    run = client.create_run(mlflow.get_experiment_by_name("errors").experiment_id)
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as overwrite:
        client.log_param(run_id, "lr", "0.2")
    assert overwrite.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in overwrite.value.message
    assert Param.objects.get(run__run_uuid=run_id, key="lr").value == "0.1"

    url = mlflow_server
    conflicting_batch = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}],
        "params": [{"key": "lr", "value": "0.3"}],
        "tags": [{"key": "t", "value": "v"}],
    }
    status, body = _raw(url, api_token, "/api/2.0/mlflow/runs/log-batch", json=conflicting_batch)
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    non_numeric = {"run_id": run_id, "key": "m", "value": "abc", "timestamp": 1, "step": 0}
    status, body = _raw(url, api_token, "/api/2.0/mlflow/runs/log-metric", json=non_numeric)
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "'abc' is not a number" in body["message"]
    oversized = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(1001)],
    }
    status, body = _raw(url, api_token, "/api/2.0/mlflow/runs/log-batch", json=oversized)
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "at most 1000 metrics" in body["message"]
    assert not Metric.objects.filter(run__run_uuid=run_id).exists()
    assert not RunTag.objects.filter(run__run_uuid=run_id, key="t").exists()

    experiment_id = run.info.experiment_id
    traversal = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/%2e%2e/x"
    status, body = _raw(url, api_token, traversal, method="PUT", data=b"owned")
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert not Artifact.objects.exists()
    assert not [p for p in artifact_root.rglob("*") if p.is_file()]
    with pytest.raises(MlflowException):  # the client refuses it too, before sending
        client.log_artifact(run_id, __file__, artifact_path="../x")

    status, body = _raw(url, api_token, "/api/2.0/mlflow/logged-models", json={"name": "m"})
    assert (status, body["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    get_run = "/api/2.0/mlflow/runs/get"
    status, body = _raw(url, "", get_run, method="GET", params={"run_id": run_id})
    assert (status, body["error_code"]) == (401, "UNAUTHENTICATED")
    status, body = _raw(url, "ts_forged", get_run, method="GET", params={"run_id": run_id})
    assert (status, body["error_code"]) == (401, "UNAUTHENTICATED")
