from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from experiments.models import Run
from registry.models import ModelVersion, Stage, StageTransition
from registry.services import model_alias_set, version_transition
from tests.registry.conftest import client_for

pytestmark = pytest.mark.django_db
GOOD = {"accuracy": 0.6, "roc_auc": 0.6}


def test_reads_need_a_login(make_version: Callable[..., ModelVersion]) -> None:
    make_version()
    for url in ("/api/v1/models/", "/api/v1/models/direction", "/api/v1/models/direction/history"):
        assert APIClient().get(url).status_code == 401


def test_the_model_list_shows_stages_and_aliases(
    make_version: Callable[..., ModelVersion], promoter: Any, api_client: APIClient
) -> None:
    v1 = make_version(metrics=GOOD)
    make_version(metrics=GOOD)
    version_transition(version=v1, to_stage=Stage.PRODUCTION, actor=promoter, reason="go")
    model_alias_set(model=v1.model, alias="champion", version=v1)
    [body] = api_client.get("/api/v1/models/").json()
    assert body["name"] == "direction" and body["production_version"] == 1
    assert body["versions"] == [
        {"version": 2, "stage": "None", "aliases": []},
        {"version": 1, "stage": "Production", "aliases": ["champion"]},
    ]
    assert body["aliases"] == {"champion": 1}
    assert api_client.get("/api/v1/models/direction").json()["versions"] == body["versions"]
    versions = api_client.get("/api/v1/models/direction/versions/").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["run_id"] == v1.run.run_uuid
    assert versions[1]["feature_view"] == {"name": "reg_view", "version": 1}
    detail = api_client.get("/api/v1/models/direction/versions/1").json()
    assert detail["reference_statistics"] == {"schema_version": 1, "features": {}}


def test_unknown_models_and_versions_are_404(
    make_version: Callable[..., ModelVersion], api_client: APIClient
) -> None:
    make_version()
    assert api_client.get("/api/v1/models/nope").status_code == 404
    assert api_client.get("/api/v1/models/direction/versions/9").status_code == 404
    response = api_client.get("/api/v1/models/direction/policy-check?version=9&stage=Staging")
    assert response.status_code == 404


def test_registering_a_run_needs_the_permission(
    make_run: Callable[..., Run], api_client: APIClient, promoter: Any
) -> None:
    run = make_run()
    url = "/api/v1/models/fresh/versions/"
    response = api_client.post(url, {"run_id": run.run_uuid}, format="json")
    assert response.status_code == 403
    response = client_for(promoter).post(url, {"run_id": run.run_uuid}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 1 and response.json()["model"] == "fresh"
    again = client_for(promoter).post(url, {"run_id": run.run_uuid}, format="json")
    assert again.json()["version"] == 2


def test_registering_refuses_bad_runs_clearly(make_run: Callable[..., Run], promoter: Any) -> None:
    client = client_for(promoter)
    url = "/api/v1/models/fresh/versions/"
    response = client.post(url, {"run_id": "f" * 32}, format="json")
    assert response.status_code == 404 and "no run" in response.json()["detail"]
    response = client.post(url, {"run_id": make_run(finish=False).run_uuid}, format="json")
    assert response.status_code == 400 and "only a FINISHED run" in response.json()["detail"]
    response = client.post(url, {"run_id": "../x"}, format="json")
    assert response.status_code == 400 and "run_id" in response.json()


def test_promote_needs_the_permission(
    make_version: Callable[..., ModelVersion], api_client: APIClient
) -> None:
    make_version(metrics=GOOD)
    response = api_client.post(
        "/api/v1/models/direction/versions/1/promote",
        {"stage": "Production", "reason": "go"},
        format="json",
    )
    assert response.status_code == 403
    assert "registry.promote_modelversion" in response.json()["detail"]
    assert not StageTransition.objects.exists()


def test_promote_and_a_refusal_with_every_rules_result(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    make_version(metrics=GOOD)
    make_version(metrics={"accuracy": 0.5, "roc_auc": 0.5})
    client = client_for(promoter)
    url = "/api/v1/models/direction/versions/{}/promote"
    response = client.post(url.format(1), {"stage": "Production", "reason": "go"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "applied" and response.json()["to_stage"] == "Production"
    assert response.json()["request_id"] == response["X-Request-ID"]
    response = client.post(url.format(2), {"stage": "Production", "reason": "go"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "policy_refused" and "min_metric" in body["detail"]
    assert len(body["policy_results"]) == 7
    assert {"rule", "passed", "reason"} == set(body["policy_results"][0])
    assert StageTransition.objects.get(pk=body["transition_id"]).outcome == "refused"
    response = client.post(url.format(2), {"stage": "Live", "reason": "go"}, format="json")
    assert response.status_code == 400 and "stage" in response.json()
    response = client.post(url.format(2), {"stage": "Staging"}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    response = client.post(
        url.format(2),
        {"stage": "Production", "reason": "go", "override_justification": "flat but needed"},
        format="json",
    )
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_override_through_the_api(
    make_version: Callable[..., ModelVersion], overrider: Any
) -> None:
    make_version(metrics={"accuracy": 0.5, "roc_auc": 0.5})
    response = client_for(overrider).post(
        "/api/v1/models/direction/versions/1/promote",
        {"stage": "Production", "reason": "demo", "override_justification": "demo, no edge"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["outcome"] == "overridden"


def test_history_rollback_and_policy_check(
    make_version: Callable[..., ModelVersion], promoter: Any, api_client: APIClient
) -> None:
    v1 = make_version(metrics=GOOD)
    v2 = make_version(metrics={"accuracy": 0.6, "roc_auc": 0.7})
    for v in (v1, v2):
        version_transition(version=v, to_stage=Stage.PRODUCTION, actor=promoter, reason="go")
    check = api_client.get("/api/v1/models/direction/policy-check?version=1&stage=Production")
    assert check.status_code == 200
    body = check.json()
    assert body["passed"] is False and body["policy_source"].endswith("policy_default.yaml")
    failing = {r["rule"] for r in body["results"] if not r["passed"]}
    assert failing == {"beats_production", "required_permission"}  # analyst lacks the permission
    count = StageTransition.objects.count()
    assert (
        api_client.get("/api/v1/models/direction/policy-check?version=1&stage=x").status_code == 400
    )
    assert StageTransition.objects.count() == count  # the dry run recorded nothing

    assert api_client.post("/api/v1/models/direction/rollback", {"reason": "x"}).status_code == 403
    response = client_for(promoter).post(
        "/api/v1/models/direction/rollback", {"reason": "v2 misbehaves"}, format="json"
    )
    assert response.status_code == 200 and response.json()["version"] == 1
    history = api_client.get("/api/v1/models/direction/history").json()
    assert [(h["version"], h["to_stage"], h["outcome"]) for h in history] == [
        (1, "Production", "applied"),
        (2, "Archived", "applied"),
        (2, "Production", "applied"),
        (1, "Archived", "applied"),
        (1, "Production", "applied"),
    ]
    assert history[0]["actor"] == "promoter" and history[0]["reason"] == "v2 misbehaves"


def test_aliases_set_and_delete(
    make_version: Callable[..., ModelVersion], promoter: Any, api_client: APIClient
) -> None:
    make_version()
    make_version()
    url = "/api/v1/models/direction/aliases/champion"
    assert api_client.put(url, {"version": 1}, format="json").status_code == 403
    client = client_for(promoter)
    assert client.put(url, {"version": 1}, format="json").json() == {
        "alias": "champion",
        "version": 1,
    }
    assert client.put(url, {"version": 2}, format="json").json()["version"] == 2
    assert api_client.get("/api/v1/models/direction").json()["aliases"] == {"champion": 2}
    bad = client.put("/api/v1/models/direction/aliases/9lives", {"version": 1}, format="json")
    assert bad.status_code == 400 and "must match" in bad.json()["detail"]
    assert client.put(url, {"version": 7}, format="json").status_code == 404
    assert client.delete(url).status_code == 204
    assert client.delete(url).status_code == 404


def test_a_promotion_based_on_a_stale_production_state_is_a_409_conflict(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    make_version(metrics=GOOD)
    make_version(metrics={"accuracy": 0.6, "roc_auc": 0.7})
    client = client_for(promoter)
    url = "/api/v1/models/direction/versions/{}/promote"
    body = {"stage": "Production", "reason": "go", "expected_production_version": None}
    assert client.post(url.format(1), body, format="json").status_code == 200
    response = client.post(url.format(2), body, format="json")
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert StageTransition.objects.get(pk=response.json()["transition_id"]).outcome == "conflict"
    body["expected_production_version"] = 1
    assert client.post(url.format(2), body, format="json").status_code == 200
