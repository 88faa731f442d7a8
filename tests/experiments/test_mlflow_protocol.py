"""MLflow's REST protocol in detail (in-process, no live server): request forms the client sends,
response shapes it parses, error codes and statuses, limits, and what is not implemented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from experiments import services
from experiments.models import Artifact, Experiment, Metric, Param, Run, RunTag

pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow"


def _post(client: APIClient, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = client.post(API + path, body, format="json")
    return response.status_code, response.json()


@pytest.fixture
def run_id(token_client: APIClient) -> str:
    _, body = _post(token_client, "/experiments/create", {"name": "protocol"})
    _, created = _post(
        token_client,
        "/runs/create",
        {"experiment_id": body["experiment_id"], "start_time": 1_700_000_000_000, "tags": []},
    )
    return created["run"]["info"]["run_id"]


def test_a_run_has_mlflows_shape(token_client: APIClient, run_id: str) -> None:
    status, _ = _post(
        token_client,
        "/runs/log-batch",
        {
            "run_id": run_id,
            "metrics": [{"key": "nan", "value": "NaN", "timestamp": 5, "step": 1}],
            "params": [{"key": "lr", "value": "0.1"}],
            "tags": [{"key": "desk", "value": "fx"}],
        },
    )
    assert status == 200
    response = token_client.get(API + "/runs/get", {"run_id": run_id})
    run = response.json()["run"]
    assert set(run) == {"info", "data", "inputs", "outputs"}
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] == run_id
    assert info["artifact_uri"] == f"mlflow-artifacts:/{info['experiment_id']}/{run_id}/artifacts"
    assert (info["status"], info["lifecycle_stage"], info["start_time"]) == (
        "RUNNING",
        "active",
        1_700_000_000_000,
    )
    assert "end_time" not in info
    assert run["data"]["metrics"] == [{"key": "nan", "value": "NaN", "timestamp": 5, "step": 1}]
    assert run["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert {"key": "desk", "value": "fx"} in run["data"]["tags"]
    assert b"NaN," not in response.content  # strict JSON: NaN travels as the string "NaN"


def test_protobuf_json_forms_are_accepted(token_client: APIClient, run_id: str) -> None:
    status, _ = _post(
        token_client,
        "/runs/log-metric",
        {"run_uuid": run_id, "key": "m", "value": "0.5", "timestamp": "17", "step": "3"},
    )
    assert status == 200
    metric = Metric.objects.get(run__run_uuid=run_id, key="m")
    assert (metric.value, metric.timestamp, metric.step) == (0.5, 17, 3)
    status, body = _post(
        token_client,
        "/runs/update",
        {"run_id": run_id, "status": 4, "end_time": 1_700_000_000_500},
    )
    assert (status, body["run_info"]["status"], body["run_info"]["end_time"]) == (
        200,
        "FAILED",
        1_700_000_000_500,
    )


def test_mlflow_3_fields_of_log_metric_are_accepted(token_client: APIClient, run_id: str) -> None:
    status, _ = _post(
        token_client,
        "/runs/log-metric",
        {
            "run_id": run_id,
            "key": "acc",
            "value": 0.9,
            "timestamp": 1,
            "step": 0,
            "model_id": "m-123",
            "dataset_name": "train",
            "dataset_digest": "abc",
        },
    )
    assert status == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "message"),
    [
        ("/runs/get", {"run_id": "0" * 32}, 404, "RESOURCE_DOES_NOT_EXIST", "not found"),
        ("/experiments/get", {"experiment_id": "999"}, 404, "RESOURCE_DOES_NOT_EXIST", "999"),
        ("/experiments/get", {"experiment_id": "abc"}, 400, "INVALID_PARAMETER_VALUE", "abc"),
        ("/experiments/get-by-name", {"experiment_name": "x"}, 404, "RESOURCE_DOES_NOT_EXIST", "x"),
        (
            "/metrics/get-history",
            {"run_id": "0" * 32},
            400,
            "INVALID_PARAMETER_VALUE",
            "metric_key",
        ),
    ],
)
def test_get_errors(
    token_client: APIClient, path: str, body: dict, status: int, code: str, message: str
) -> None:
    response = token_client.get(API + path, body)
    assert response.status_code == status
    assert response.json()["error_code"] == code
    assert message in response.json()["message"]


def test_batch_limits_and_bad_values_write_nothing(token_client: APIClient, run_id: str) -> None:
    def batch(**body: Any) -> tuple[int, dict[str, Any]]:
        return _post(token_client, "/runs/log-batch", {"run_id": run_id, **body})

    metric = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    cases = [
        (batch(metrics=[metric] * 1001), "at most 1000 metrics"),
        (batch(params=[{"key": f"p{i}", "value": "1"} for i in range(101)]), "at most 100 params"),
        (batch(tags=[{"key": f"t{i}", "value": "1"} for i in range(101)]), "at most 100 tags"),
        (
            batch(
                metrics=[metric] * 901, params=[{"key": f"p{i}", "value": "1"} for i in range(100)]
            ),
            "at most 1000 metrics, params, and tags",
        ),
        (batch(params=[{"key": "p", "value": "1"}, {"key": "p", "value": "1"}]), "duplicate key"),
        (batch(metrics=[{**metric, "value": "x"}], params=[{"key": "ok", "value": "1"}]), "'x'"),
        (batch(metrics=[{**metric, "timestamp": -1}]), "timestamp"),
        (batch(tags=[{"key": "t", "value": "v" * 8001}]), "longer than 8000"),
        (batch(params=[{"key": "p", "value": "v" * 6001}]), "longer than 6000"),
        (batch(metrics={"key": "m"}), "metrics"),
    ]
    for (status, body), message in cases:
        assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), message
        assert message in body["message"]
    big = {"run_id": run_id, "params": [{"key": f"p{i}", "value": "v" * 6000} for i in range(100)],
           "tags": [{"key": f"t{i}", "value": "v" * 5000} for i in range(100)]}  # fmt: skip
    status, body = _post(token_client, "/runs/log-batch", big)
    assert status == 400 and "at most 1000000 bytes" in body["message"]
    assert not Metric.objects.exists() and not Param.objects.exists()
    assert not RunTag.objects.filter(key__in=["t", "t0"]).exists()


def test_logging_to_a_deleted_run_is_refused(token_client: APIClient, run_id: str) -> None:
    assert _post(token_client, "/runs/delete", {"run_id": run_id})[0] == 200
    status, body = _post(
        token_client, "/runs/log-parameter", {"run_id": run_id, "key": "a", "value": "1"}
    )
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "must be in the 'active' state" in body["message"]
    assert _post(token_client, "/runs/restore", {"run_id": run_id})[0] == 200
    assert Run.objects.get(run_uuid=run_id).lifecycle == "active"
    status, _ = _post(
        token_client, "/runs/log-parameter", {"run_id": run_id, "key": "a", "value": "1"}
    )
    assert status == 200


def test_the_default_experiment_takes_runs_without_an_experiment(token_client: APIClient) -> None:
    status, body = _post(token_client, "/runs/create", {"experiment_id": "0", "run_name": "x"})
    assert status == 200 and body["run"]["info"]["experiment_id"] == "0"
    assert Experiment.objects.get(pk=0).name == "Default"


def test_experiment_errors(token_client: APIClient) -> None:
    status, body = _post(
        token_client, "/experiments/create", {"name": "x", "artifact_location": "s3://b/x"}
    )
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    _post(token_client, "/experiments/create", {"name": "x"})
    status, body = _post(token_client, "/experiments/create", {"name": "x"})
    assert (status, body["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    status, body = _post(token_client, "/experiments/create", {})
    assert (status, body["message"]) == (400, "Missing value for required parameter 'name'.")
    status, body = _post(token_client, "/experiments/search", {"max_results": 50_001})
    assert status == 400 and "max_results" in body["message"]
    status, body = _post(token_client, "/experiments/search", {"page_token": "not-a-token"})
    assert status == 400 and "page token" in body["message"]


def test_search_runs_pages_with_mlflow_tokens(token_client: APIClient, user: Any) -> None:
    experiment = services.experiment_create(name="pages")
    for i in range(5):
        services.run_create(experiment=experiment, name=f"r{i}", start_time_ms=i)
    seen, token = [], None
    while True:
        body = {
            "experiment_ids": [str(experiment.pk)],
            "max_results": 2,
            "order_by": ["start_time"],
        }
        if token:
            body["page_token"] = token
        status, page = _post(token_client, "/runs/search", body)
        assert status == 200
        seen += [r["info"]["run_name"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == ["r0", "r1", "r2", "r3", "r4"]


def test_malformed_json_and_unknown_endpoints(token_client: APIClient) -> None:
    response = token_client.post(API + "/runs/create", "{not json", content_type="application/json")
    assert (
        response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    )
    response = token_client.post(API + "/runs/create", "[1]", content_type="application/json")
    assert response.json()["message"] == "the request body must be a JSON object"
    for method, path in [
        ("post", "/api/2.0/mlflow/logged-models"),
        ("get", "/api/2.0/mlflow/traces/abc/info"),
        ("post", "/api/2.0/mlflow/runs/log-inputs"),
        ("post", "/api/2.0/mlflow-artifacts/mpu/create/1/x/artifacts/a"),
        ("get", "/api/3.0/mlflow/traces"),
    ]:
        response = getattr(token_client, method)(path)
        assert response.status_code == 404, path
        assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    response = token_client.get(API + "/runs/create")
    assert response.status_code == 405 and response.json()["error_code"] == "BAD_REQUEST"


def test_anonymous_requests_get_mlflows_unauthenticated() -> None:
    for path in (API + "/runs/search", API + "/anything", "/api/2.0/mlflow-artifacts/artifacts"):
        response = APIClient().post(path, {}, format="json")
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHENTICATED"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_logged_models_search_is_empty_and_server_info_says_no_multipart(
    token_client: APIClient,
) -> None:
    status, body = _post(token_client, "/logged-models/search", {"experiment_ids": ["1"]})
    assert (status, body) == (200, {"models": []})
    info = token_client.get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False
    assert info["multipart_downloads_enabled"] is False


@pytest.mark.parametrize(
    "tail", ["../x", "a/../../x", "%2e%2e/x", "..%5cx", "x%00y", "%252e%252e%252fx", "", "a/"]
)
def test_artifact_proxy_refuses_traversal_and_writes_nothing(
    token_client: APIClient, run_id: str, artifact_root: Path, tail: str
) -> None:
    experiment_id = Run.objects.get(run_uuid=run_id).experiment_id
    path = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{tail}"
    response = token_client.put(path, b"owned", content_type="text/plain")
    assert response.status_code == 400, tail
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not Artifact.objects.exists()
    assert not [p for p in artifact_root.rglob("*") if p.is_file()]


def test_artifact_proxy_checks_the_run_and_experiment(
    token_client: APIClient, run_id: str, artifact_root: Path
) -> None:
    base = "/api/2.0/mlflow-artifacts/artifacts"
    experiment_id = Run.objects.get(run_uuid=run_id).experiment_id
    for location, status in [
        (f"{experiment_id}/{'0' * 32}/artifacts/x.txt", 404),
        (f"{experiment_id + 1}/{run_id}/artifacts/x.txt", 404),
        (f"{experiment_id}/{run_id}/other/x.txt", 400),
        (f"/etc/{run_id}/artifacts/passwd", 400),
    ]:
        response = token_client.put(f"{base}/{location}", b"x", content_type="text/plain")
        assert response.status_code == status, location
    ok = token_client.put(
        f"{base}/{experiment_id}/{run_id}/artifacts/a.json",
        json.dumps({"k": 1}).encode(),
        content_type="application/json",
    )
    assert ok.status_code == 200
    listing = token_client.get(base, {"path": f"{experiment_id}/{run_id}/artifacts"}).json()
    assert listing == {"files": [{"path": "a.json", "is_dir": False, "file_size": 8}]}
    deleted = token_client.delete(f"{base}/{experiment_id}/{run_id}/artifacts/a.json")
    assert deleted.status_code == 200 and not Artifact.objects.exists()
