"""The roles (tradingsite.dashboard.roles) on the write APIs: an analyst reads and is refused
every write (403; MLflow's PERMISSION_DENIED on its API), a researcher tracks experiments, a
data engineer ingests bars and materializes but tracks nothing; `create_api_user --role`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from experiments.models import Artifact, Experiment, Run
from experiments.services import run_create
from experiments.services.experiments import experiment_get_or_create
from features.models import Bar, FeatureView, MaterializationJob
from tests.experiments.conftest import mlflow_server  # noqa: F401  (fixture)
from tradingsite.dashboard.roles import (
    ANALYST_GROUP,
    ANALYST_PERMISSIONS,
    DATA_ENGINEER_GROUP,
    MODEL_ADMIN_GROUP,
    RESEARCHER_GROUP,
    ROLES,
    roles_ensure,
)
from tradingsite.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db
MLFLOW = "/api/2.0/mlflow"
START = datetime(2024, 1, 1, 21, tzinfo=UTC)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def make_user(django_user_model: Any) -> Callable[..., Any]:
    from tests.conftest import user_in_roles

    counter = iter(range(1, 100))
    return lambda *groups: user_in_roles(django_user_model, f"user{next(counter)}", *groups)


@pytest.fixture
def analyst(analyst_user: Any) -> APIClient:
    return client_for(analyst_user)


@pytest.fixture
def researcher(make_user: Callable[..., Any]) -> APIClient:
    return client_for(make_user(RESEARCHER_GROUP))


@pytest.fixture
def data_engineer(make_user: Callable[..., Any]) -> APIClient:
    return client_for(make_user(DATA_ENGINEER_GROUP))


@pytest.fixture
def run() -> Run:
    return run_create(experiment=experiment_get_or_create(name="roles"), name="existing")


def _bars(count: int) -> dict[str, Any]:
    bars = [
        {"ts": (START + timedelta(days=d)).isoformat(), "open": 10.0, "high": 11.0,
         "low": 9.5, "close": 10.5, "volume": 100.0}
        for d in range(count)
    ]  # fmt: skip
    return {"symbol": "AAPL", "timeframe": "1d", "bars": bars}


def _mlflow(client: APIClient, endpoint: str, body: dict[str, Any]) -> Any:
    return client.post(f"{MLFLOW}/{endpoint}", body, format="json")


def _assert_permission_denied(response: Any, permission: str) -> None:
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    assert permission in body["message"]


# --- the groups -----------------------------------------------------------------------------------


def test_the_roles_hold_what_they_promise() -> None:
    roles_ensure()

    def held(group: str) -> set[str]:
        return {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=group).permissions.select_related("content_type")
        }

    analyst = held(ANALYST_GROUP)
    assert analyst == set(ANALYST_PERMISSIONS)
    assert all(".view_" in name for name in analyst)  # reads only
    assert held(RESEARCHER_GROUP) - analyst == {
        "experiments.add_experiment", "experiments.change_experiment",
        "experiments.delete_experiment", "experiments.add_run", "experiments.change_run",
        "experiments.delete_run",
    }  # fmt: skip
    assert held(DATA_ENGINEER_GROUP) - analyst == {
        "features.add_bar",
        "features.materialize_featureview",
    }
    assert held(MODEL_ADMIN_GROUP) - analyst == {"registry.promote_modelversion"}
    for group, permissions in ROLES.items():  # every named permission exists
        assert len(held(group)) == len(permissions), group


# --- /api/v1 tracking -----------------------------------------------------------------------------


def test_an_analyst_reads_experiments_but_is_refused_every_tracking_write(
    analyst: APIClient, run: Run
) -> None:
    assert analyst.get("/api/v1/experiments/").status_code == 200
    assert analyst.get(f"/api/v1/runs/{run.run_uuid}").status_code == 200
    for method, path, body, permission in [
        ("post", "/api/v1/experiments/", {"name": "x"}, "experiments.add_experiment"),
        ("patch", f"/api/v1/experiments/{run.experiment_id}", {"name": "y"},
         "experiments.change_experiment"),
        ("delete", f"/api/v1/experiments/{run.experiment_id}", None,
         "experiments.delete_experiment"),
        ("post", "/api/v1/runs/", {"experiment_name": "roles"}, "experiments.add_run"),
        ("patch", f"/api/v1/runs/{run.run_uuid}", {"status": "FINISHED"},
         "experiments.change_run"),
        ("post", f"/api/v1/runs/{run.run_uuid}/log-batch", {"params": {"a": "1"}},
         "experiments.change_run"),
        ("delete", f"/api/v1/runs/{run.run_uuid}", None, "experiments.delete_run"),
    ]:  # fmt: skip
        response = getattr(analyst, method)(path, body, format="json")
        assert response.status_code == 403, (method, path, response.content)
        assert permission in response.json()["detail"], (method, path)
    upload = analyst.put(
        f"/api/v1/runs/{run.run_uuid}/artifacts/a.txt", b"x", content_type="text/plain"
    )
    assert upload.status_code == 403
    run.refresh_from_db()
    assert (run.status, run.lifecycle, run.params.count()) == ("RUNNING", "active", 0)
    assert not Artifact.objects.exists()
    assert list(Experiment.objects.values_list("name", flat=True)) == ["roles"]


def test_a_researcher_tracks_experiments_and_runs(researcher: APIClient) -> None:
    experiment = researcher.post("/api/v1/experiments/", {"name": "alpha"}, format="json")
    assert experiment.status_code == 201, experiment.content
    experiment_id = experiment.json()["id"]
    renamed = researcher.patch(f"/api/v1/experiments/{experiment_id}", {"name": "beta"})
    assert renamed.status_code == 200
    created = researcher.post("/api/v1/runs/", {"experiment_id": experiment_id}, format="json")
    assert created.status_code == 201, created.content
    run_id = created.json()["run_id"]
    logged = researcher.post(
        f"/api/v1/runs/{run_id}/log-batch",
        {"params": {"lr": "0.1"}, "metrics": {"sharpe": 1.2}},
        format="json",
    )
    assert logged.status_code == 200, logged.content
    upload = researcher.put(
        f"/api/v1/runs/{run_id}/artifacts/notes.txt", b"hello", content_type="text/plain"
    )
    assert upload.status_code == 201, upload.content
    finished = researcher.patch(f"/api/v1/runs/{run_id}", {"status": "FINISHED"}, format="json")
    assert finished.status_code == 200
    assert researcher.delete(f"/api/v1/runs/{run_id}").status_code == 204
    assert researcher.delete(f"/api/v1/experiments/{experiment_id}").status_code == 204
    stored = Run.objects.get(run_uuid=run_id)
    assert (stored.status, stored.lifecycle, stored.experiment.name) == (
        "FINISHED",
        "deleted",
        "beta",
    )
    assert stored.params.get().value == "0.1"
    assert stored.artifacts.get().path == "notes.txt"


def test_a_data_engineer_does_not_track_runs(data_engineer: APIClient, run: Run) -> None:
    assert data_engineer.post("/api/v1/runs/", {"experiment_name": "x"}).status_code == 403
    logged = data_engineer.post(
        f"/api/v1/runs/{run.run_uuid}/log-batch", {"params": {"a": "1"}}, format="json"
    )
    assert logged.status_code == 403
    assert _mlflow(data_engineer, "runs/log-parameter", {
        "run_id": run.run_uuid, "key": "a", "value": "1",
    }).status_code == 403  # fmt: skip
    assert run.params.count() == 0


# --- MLflow's API ---------------------------------------------------------------------------------


def test_an_analyst_is_refused_mlflow_writes_in_mlflows_shape(analyst: APIClient, run: Run) -> None:
    experiment_id = str(run.experiment_id)
    for endpoint, body, permission in [
        ("experiments/create", {"name": "x"}, "experiments.add_experiment"),
        ("experiments/update", {"experiment_id": experiment_id, "new_name": "y"},
         "experiments.change_experiment"),
        ("experiments/set-experiment-tag", {"experiment_id": experiment_id, "key": "k"},
         "experiments.change_experiment"),
        ("experiments/delete", {"experiment_id": experiment_id},
         "experiments.delete_experiment"),
        ("experiments/restore", {"experiment_id": experiment_id},
         "experiments.delete_experiment"),
        ("runs/create", {"experiment_id": experiment_id}, "experiments.add_run"),
        ("runs/update", {"run_id": run.run_uuid, "status": "KILLED"}, "experiments.change_run"),
        ("runs/log-metric", {"run_id": run.run_uuid, "key": "m", "value": 1, "timestamp": 1,
                             "step": 0}, "experiments.change_run"),
        ("runs/log-batch", {"run_id": run.run_uuid, "params": [{"key": "a", "value": "1"}]},
         "experiments.change_run"),
        ("runs/set-tag", {"run_id": run.run_uuid, "key": "k", "value": "v"},
         "experiments.change_run"),
        ("runs/delete", {"run_id": run.run_uuid}, "experiments.delete_run"),
        ("runs/restore", {"run_id": run.run_uuid}, "experiments.delete_run"),
    ]:  # fmt: skip
        _assert_permission_denied(_mlflow(analyst, endpoint, body), permission)
    location = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run.run_uuid}/artifacts/a"
    upload = analyst.put(location, b"x", content_type="application/octet-stream")
    _assert_permission_denied(upload, "experiments.change_run")
    _assert_permission_denied(analyst.delete(location), "experiments.change_run")
    # the reads, POSTed searches included, stay open
    assert _mlflow(analyst, "runs/search", {"experiment_ids": [experiment_id]}).status_code == 200
    assert analyst.get(f"{MLFLOW}/runs/get", {"run_id": run.run_uuid}).status_code == 200
    run.refresh_from_db()
    assert (run.status, run.lifecycle, run.name) == ("RUNNING", "active", "existing")
    assert not run.metrics.exists() and not Artifact.objects.exists()


def test_a_refused_mlflow_call_is_audited(analyst_user: Any, run: Run) -> None:
    response = _mlflow(client_for(analyst_user), "runs/log-batch", {"run_id": run.run_uuid})
    assert response.status_code == 403
    denied = AuditEvent.objects.get(action=AuditAction.PERMISSION_DENIED)
    assert (denied.actor_id, denied.outcome) == (analyst_user.pk, "denied")
    assert denied.details["path"] == f"{MLFLOW}/runs/log-batch"
    assert "experiments.change_run" in denied.details["detail"]


def test_the_mlflow_registry_refusals_are_audited_too(analyst_user: Any) -> None:
    response = _mlflow(client_for(analyst_user), "registered-models/create", {"name": "m"})
    _assert_permission_denied(response, "registry.add_modelversion")
    assert AuditEvent.objects.filter(action=AuditAction.PERMISSION_DENIED).count() == 1


def test_a_researcher_writes_through_mlflows_api(researcher: APIClient) -> None:
    created = _mlflow(researcher, "experiments/create", {"name": "mlflow-roles"})
    assert created.status_code == 200, created.content
    experiment_id = created.json()["experiment_id"]
    run = _mlflow(researcher, "runs/create", {"experiment_id": experiment_id, "start_time": 1})
    assert run.status_code == 200, run.content
    run_id = run.json()["run"]["info"]["run_id"]
    batch = {"run_id": run_id, "metrics": [{"key": "m", "value": 2, "timestamp": 1, "step": 0}]}
    assert _mlflow(researcher, "runs/log-batch", batch).status_code == 200
    location = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/a.txt"
    put = researcher.put(location, b"abc", content_type="application/octet-stream")
    assert put.status_code == 200, put.content
    assert researcher.delete(location).status_code == 200
    assert _mlflow(researcher, "runs/delete", {"run_id": run_id}).status_code == 200
    stored = Run.objects.get(run_uuid=run_id)
    assert stored.lifecycle == "deleted" and stored.latest_metrics.get().value == 2
    assert not stored.artifacts.exists()


@pytest.mark.django_db(transaction=True)
def test_the_official_mlflow_client_raises_permission_denied_for_an_analyst(
    mlflow_server: str,  # noqa: F811  (the fixture imported above)
    analyst_user: Any,
) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    run = run_create(experiment=experiment_get_or_create(name="watched"), name="r")
    assert mlflow.get_experiment_by_name("watched") is not None  # reads work
    with pytest.raises(MlflowException) as refused:
        mlflow.create_experiment("not-mine")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert "experiments.add_experiment" in refused.value.message
    with pytest.raises(MlflowException) as refused:
        MlflowClient().log_param(run.run_uuid, "lr", "0.1")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert not Experiment.objects.filter(name="not-mine").exists()
    assert not run.params.exists()


@pytest.fixture
def api_token(analyst_user: Any) -> str:
    """The token mlflow_server hands to the client: the analyst's."""
    from tradingsite.security.api_tokens import api_token_create

    _, token = api_token_create(user=analyst_user, name="tests")
    return token


# --- market data and feature views ----------------------------------------------------------------


def test_only_a_data_engineer_ingests_bars(
    analyst: APIClient, researcher: APIClient, data_engineer: APIClient
) -> None:
    for refused in (analyst, researcher):
        response = refused.post("/api/v1/market/bars", _bars(2), format="json")
        assert response.status_code == 403
        assert "features.add_bar" in response.json()["detail"]
    assert not Bar.objects.exists()
    response = data_engineer.post("/api/v1/market/bars", _bars(2), format="json")
    assert response.status_code == 201, response.content
    assert Bar.objects.count() == 2
    assert analyst.get("/api/v1/market/bars?symbol=AAPL&timeframe=1d").status_code == 200


def test_only_a_data_engineer_materializes(
    analyst: APIClient, researcher: APIClient, data_engineer: APIClient
) -> None:
    FeatureView.objects.create(name="roles_view", feature_names=["rsi_14"])
    path = "/api/v1/feature-views/roles_view/materialize"
    for refused in (analyst, researcher):
        response = refused.post(path, {"mode": "full"}, format="json")
        assert response.status_code == 403
        assert "features.materialize_featureview" in response.json()["detail"]
    assert not MaterializationJob.objects.exists()
    response = data_engineer.post(path, {"mode": "full"}, format="json")
    assert response.status_code == 202, response.content
    assert MaterializationJob.objects.get().view.name == "roles_view"


def test_a_write_refusal_comes_before_any_lookup(analyst: APIClient) -> None:
    """A missing object must not hide a refusal behind a 404 (nor probe for names)."""
    missing = analyst.post("/api/v1/feature-views/nope/materialize", {}, format="json")
    assert missing.status_code == 403
    assert analyst.delete("/api/v1/runs/" + "0" * 32).status_code == 403
    gone = _mlflow(analyst, "runs/delete", {"run_id": "0" * 32})
    _assert_permission_denied(gone, "experiments.delete_run")


# --- create_api_user --role ----------------------------------------------------------------------


@pytest.fixture
def create_api_user(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Run the command with `args` and a password from the environment; returns its output."""

    def run(*args: str, password: str = "s3cret-Enough-pass") -> str:
        monkeypatch.setenv("ROLES_TEST_PASSWORD", password)
        out = StringIO()
        call_command("create_api_user", *args, "--password-env", "ROLES_TEST_PASSWORD", stdout=out)
        return out.getvalue()

    return run


def test_create_api_user_puts_the_user_in_each_role(
    django_user_model: Any, create_api_user: Callable[..., str]
) -> None:
    out = create_api_user("trainer", "--role", "researcher", "--role", "data-engineer")
    user = django_user_model.objects.get(username="trainer")
    assert set(user.groups.values_list("name", flat=True)) == {
        RESEARCHER_GROUP,
        DATA_ENGINEER_GROUP,
    }
    assert "roles: data engineer, researcher" in out
    assert user.has_perm("experiments.change_run") and user.has_perm("features.add_bar")
    assert not user.has_perm("registry.promote_modelversion") and not user.is_superuser
    # resetting the password with another role adds it and keeps the others
    create_api_user("trainer", "--role", "model-admin", password="an0ther-Good-pass")
    user = django_user_model.objects.get(username="trainer")
    assert user.groups.count() == 3 and user.check_password("an0ther-Good-pass")
    assert django_user_model.objects.get(username="trainer").has_perm(
        "registry.promote_modelversion"
    )


def test_create_api_user_without_a_role_makes_a_reader_with_no_group(
    django_user_model: Any, create_api_user: Callable[..., str]
) -> None:
    out = create_api_user("plain")
    user = django_user_model.objects.get(username="plain")
    assert not user.groups.exists() and "roles: none" in out
    client = client_for(user)
    assert client.get("/api/v1/experiments/").status_code == 200
    assert client.post("/api/v1/experiments/", {"name": "x"}, format="json").status_code == 403


def test_create_api_user_refuses_an_unknown_role(
    django_user_model: Any, create_api_user: Callable[..., str]
) -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        create_api_user("someone", "--role", "god")
    assert not django_user_model.objects.filter(username="someone").exists()


def test_an_analyst_made_by_create_api_user_can_log_in_and_read_but_not_write(
    password: str, create_api_user: Callable[..., str]
) -> None:
    create_api_user("viewer", "--role", "analyst", password=password)
    tokens = APIClient().post(
        "/api/v1/auth/token/", {"username": "viewer", "password": password}, format="json"
    )
    assert tokens.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    assert client.get("/api/v1/experiments/").status_code == 200
    _assert_permission_denied(
        _mlflow(client, "experiments/create", {"name": "x"}), "experiments.add_experiment"
    )
