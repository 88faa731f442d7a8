"""The native tracking API (/api/v1/experiments/, /api/v1/runs/...)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from experiments.models import Artifact, Metric, Param, Run
from features.models import FeatureView

pytestmark = pytest.mark.django_db


def _run(api_client: APIClient, **body: Any) -> dict[str, Any]:
    response = api_client.post("/api/v1/runs/", {"experiment_name": "api", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_every_tracking_route_needs_a_login() -> None:
    client = APIClient()
    for method, path in [
        ("get", "/api/v1/experiments/"),
        ("post", "/api/v1/runs/"),
        ("get", "/api/v1/runs/compare"),
        ("get", "/api/v1/runs/" + "0" * 32),
        ("post", "/api/v1/runs/" + "0" * 32 + "/log-batch"),
        ("put", "/api/v1/runs/" + "0" * 32 + "/artifacts/x.txt"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 401, (method, path)


def test_experiments_are_created_listed_filtered_renamed_and_deleted(api_client: APIClient) -> None:
    created = api_client.post(
        "/api/v1/experiments/",
        {"name": "momentum", "description": "12-1 momentum", "tags": {"desk": "fx"}},
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["tags"], body["lifecycle"]) == ("momentum", {"desk": "fx"}, "active")
    assert body["artifact_location"] == f"mlflow-artifacts:/{body['id']}"
    api_client.post("/api/v1/experiments/", {"name": "carry"}, format="json")
    duplicate = api_client.post("/api/v1/experiments/", {"name": "carry"}, format="json")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "resource_already_exists"

    listing = api_client.get("/api/v1/experiments/", {"filter": "tags.desk = 'fx'"}).json()
    assert listing["count"] == 1 and listing["results"][0]["name"] == "momentum"
    ordered = api_client.get("/api/v1/experiments/", {"order_by": "name ASC"}).json()
    assert [e["name"] for e in ordered["results"]] == ["carry", "momentum"]
    bad = api_client.get("/api/v1/experiments/", {"filter": "name > 'x'"})
    assert bad.status_code == 400 and "Invalid comparator" in bad.json()["detail"]

    path = f"/api/v1/experiments/{body['id']}"
    assert api_client.patch(path, {"name": "momentum-v2"}, format="json").json()["name"] == (
        "momentum-v2"
    )
    assert api_client.delete(path).status_code == 204
    assert api_client.get(path).json()["lifecycle"] == "deleted"
    assert api_client.get("/api/v1/experiments/999999").status_code == 404


def test_a_run_is_created_logged_searched_and_finished(api_client: APIClient) -> None:
    run = _run(api_client, name="walk-forward", tags={"desk": "fx"}, source="notebook")
    run_id = run["run_id"]
    assert len(run_id) == 32 and run["status"] == "RUNNING"
    assert run["created_by"] == "analyst" and run["tags"]["mlflow.runName"] == "walk-forward"
    batch = {
        "params": {"lr": 0.01, "model": "gbm"},
        "metrics": [{"key": "loss", "value": 1.0 / (s + 1), "step": s} for s in range(5)]
        + [{"key": "odd", "value": "NaN"}],
        "tags": {"stage": "research"},
    }
    logged = api_client.post(f"/api/v1/runs/{run_id}/log-batch", batch, format="json")
    assert logged.json() == {"params": 2, "metrics": 6, "tags": 1}
    detail = api_client.get(f"/api/v1/runs/{run_id}").json()
    assert detail["params"] == {"lr": "0.01", "model": "gbm"}
    assert detail["metrics"]["loss"]["value"] == pytest.approx(0.2)
    assert detail["metrics"]["loss"]["step"] == 4
    assert detail["metrics"]["odd"]["value"] is None  # NaN
    history = api_client.get(f"/api/v1/runs/{run_id}/metric-history", {"key": "loss", "limit": 2})
    assert history.json()["count"] == 5
    assert [p["step"] for p in history.json()["results"]] == [0, 1]

    finished = api_client.patch(f"/api/v1/runs/{run_id}", {"status": "FINISHED"}, format="json")
    assert finished.json()["status"] == "FINISHED" and finished.json()["end_time"]
    other = _run(api_client, name="baseline")
    api_client.post(
        f"/api/v1/runs/{other['run_id']}/log-batch",
        {"params": {"model": "lr"}, "metrics": {"loss": 0.5}},
        format="json",
    )
    found = api_client.get(
        "/api/v1/runs/", {"filter": "metrics.loss < 0.4 and params.model = 'gbm'"}
    ).json()
    assert [r["name"] for r in found["results"]] == ["walk-forward"]
    ordered = api_client.get("/api/v1/runs/", {"order_by": "metrics.loss DESC", "limit": 1}).json()
    assert ordered["count"] == 2 and ordered["results"][0]["name"] == "baseline"
    assert ordered["next"] is not None
    assert api_client.get("/api/v1/runs/", {"status": "RUNNING"}).json()["count"] == 1
    assert api_client.get("/api/v1/runs/", {"experiment_id": "x"}).status_code == 400


def test_a_refused_batch_is_a_400_naming_the_problem_and_writes_nothing(
    api_client: APIClient,
) -> None:
    run_id = _run(api_client)["run_id"]
    api_client.post(f"/api/v1/runs/{run_id}/log-batch", {"params": {"lr": 1}}, format="json")
    cases = [
        ({"params": {"lr": 2}, "metrics": {"m": 1}}, "Changing param values is not allowed"),
        (
            {"metrics": [{"key": "m", "value": "high"}], "tags": {"t": "v"}},
            "'high' is not a number",
        ),
        ({"metrics": [{"key": "../m", "value": 1}]}, "would resolve to"),
        ({"metrics": [{"key": "m", "value": 1, "step": 2**63}]}, "outside"),
        ({"tags": {"t": "a\x00b"}}, "NUL"),
        ({"metrics": [{"key": "m", "value": 1}] * 10_001}, "at most 10000 metrics"),
    ]
    for body, message in cases:
        response = api_client.post(f"/api/v1/runs/{run_id}/log-batch", body, format="json")
        assert response.status_code == 400, body
        assert message in response.json()["detail"]
    assert Param.objects.filter(run__run_uuid=run_id).count() == 1
    assert not Metric.objects.filter(run__run_uuid=run_id).exists()
    missing = api_client.post("/api/v1/runs/" + "0" * 32 + "/log-batch", {}, format="json")
    assert missing.status_code == 404 and missing.json()["code"] == "resource_does_not_exist"


def test_a_run_links_its_feature_view_version_and_training_set(api_client: APIClient) -> None:
    FeatureView.objects.create(name="core_technical", version=2)
    run = _run(
        api_client,
        feature_view={"name": "core_technical", "version": 2},
        training_set={"symbols": ["AAPL"], "window": {"start": "2024-01-01"}, "label": "up"},
    )
    assert run["feature_view"] == {"name": "core_technical", "version": 2}
    assert run["training_set"]["view"] == "core_technical" and run["training_set"]["version"] == 2
    unknown = api_client.post(
        "/api/v1/runs/",
        {"experiment_name": "api", "feature_view": {"name": "core_technical", "version": 9}},
        format="json",
    )
    assert unknown.status_code == 404
    patched = api_client.patch(
        f"/api/v1/runs/{run['run_id']}", {"training_set": {"label": "down"}}, format="json"
    )
    assert patched.json()["training_set"] == {
        "label": "down",
        "view": "core_technical",
        "version": 2,
    }
    FeatureView.objects.create(name="core_technical", version=3)
    moved = api_client.patch(
        f"/api/v1/runs/{run['run_id']}",
        {"feature_view": {"name": "core_technical", "version": 3}},
        format="json",
    ).json()
    assert moved["feature_view"]["version"] == moved["training_set"]["version"] == 3
    assert moved["training_set"]["label"] == "down"


def test_artifacts_upload_list_download_and_hash(
    api_client: APIClient, artifact_root: Path
) -> None:
    run_id = _run(api_client)["run_id"]
    content = bytes(range(256)) * 100
    put = api_client.put(
        f"/api/v1/runs/{run_id}/artifacts/model/weights.bin",
        content,
        content_type="application/octet-stream",
    )
    assert put.status_code == 201
    assert put.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert put.json()["size_bytes"] == len(content)
    api_client.put(f"/api/v1/runs/{run_id}/artifacts/report.html", b"<script>x</script>",
                   content_type="text/html")  # fmt: skip
    listing = api_client.get(f"/api/v1/runs/{run_id}/artifacts").json()
    assert listing == [
        {"path": "model", "is_dir": True},
        {
            "path": "report.html",
            "is_dir": False,
            "size_bytes": 18,
            "sha256": hashlib.sha256(b"<script>x</script>").hexdigest(),
        },
    ]
    inner = api_client.get(f"/api/v1/runs/{run_id}/artifacts", {"path": "model"}).json()
    assert [e["path"] for e in inner] == ["model/weights.bin"]

    download = api_client.get(f"/api/v1/runs/{run_id}/artifacts/model/weights.bin")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == content
    assert download["X-Artifact-Sha256"] == hashlib.sha256(content).hexdigest()
    html = api_client.get(f"/api/v1/runs/{run_id}/artifacts/report.html")
    assert html["Content-Disposition"].startswith("attachment")
    assert html["Content-Type"] == "application/octet-stream"
    assert html["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in html["Content-Security-Policy"]
    assert api_client.get(f"/api/v1/runs/{run_id}/artifacts/nope.txt").status_code == 404


@pytest.mark.parametrize(
    "name", ["../x", "..%2fx", "%2e%2e/x", "%252e%252e%252fx", "a/../../x", "a%5cb", "x%00y", "a;b"]
)
def test_artifact_traversal_is_a_400_that_writes_nothing(
    api_client: APIClient, artifact_root: Path, name: str
) -> None:
    run_id = _run(api_client)["run_id"]
    response = api_client.put(
        f"/api/v1/runs/{run_id}/artifacts/{name}", b"owned", content_type="text/plain"
    )
    assert response.status_code == 400, name
    assert not Artifact.objects.exists()
    assert not [p for p in artifact_root.parent.rglob("*") if p.is_file()]


def test_runs_compare_side_by_side_with_histories_aligned_by_step(api_client: APIClient) -> None:
    first = _run(api_client, name="a")["run_id"]
    second = _run(api_client, name="b")["run_id"]
    api_client.post(
        f"/api/v1/runs/{first}/log-batch",
        {
            "params": {"lr": 0.1},
            "metrics": [{"key": "loss", "value": v, "step": s} for s, v in [(0, 1.0), (1, 0.5)]],
        },
        format="json",
    )
    api_client.post(
        f"/api/v1/runs/{second}/log-batch",
        {
            "params": {"lr": 0.2, "depth": 3},
            "metrics": [{"key": "loss", "value": v, "step": s} for s, v in [(1, 0.8), (2, 0.6)]],
        },
        format="json",
    )
    body = api_client.get("/api/v1/runs/compare", {"run_id": [first, second]}).json()
    assert [r["name"] for r in body["runs"]] == ["a", "b"]
    assert body["params"] == {"lr": {first: "0.1", second: "0.2"}, "depth": {second: "3"}}
    assert body["metrics"]["loss"][first]["value"] == 0.5
    assert body["metrics"]["loss"][second]["value"] == 0.6
    assert body["histories"]["loss"] == [
        {"step": 0, "values": {first: 1.0}},
        {"step": 1, "values": {first: 0.5, second: 0.8}},
        {"step": 2, "values": {second: 0.6}},
    ]
    assert api_client.get("/api/v1/runs/compare").status_code == 400
    unknown = api_client.get("/api/v1/runs/compare", {"run_id": [first, "f" * 32]})
    assert unknown.status_code == 404 and "f" * 32 in unknown.json()["detail"]


def test_runs_are_soft_deleted(api_client: APIClient) -> None:
    run_id = _run(api_client)["run_id"]
    assert api_client.delete(f"/api/v1/runs/{run_id}").status_code == 204
    assert Run.objects.get(run_uuid=run_id).lifecycle == "deleted"
    assert api_client.get("/api/v1/runs/").json()["count"] == 0
    assert api_client.get("/api/v1/runs/", {"view": "deleted"}).json()["count"] == 1


def test_the_admin_shows_experiments_and_runs_read_only(
    client: Any, admin_user: Any, api_client: APIClient
) -> None:
    run = _run(api_client, name="shown")
    api_client.post(
        f"/api/v1/runs/{run['run_id']}/log-batch",
        {"params": {"lr": 1}, "metrics": {"loss": 0.5}},
        format="json",
    )
    client.force_login(admin_user)
    pk = Run.objects.get(run_uuid=run["run_id"]).pk
    for path in (
        "/admin/experiments/experiment/",
        "/admin/experiments/run/",
        f"/admin/experiments/run/{pk}/change/",
        f"/admin/experiments/experiment/{Run.objects.get(pk=pk).experiment_id}/change/",
    ):
        assert client.get(path).status_code == 200, path
    assert client.get("/admin/experiments/run/add/").status_code == 403
