"""The official MLflow client's model-registry calls against a live tradingsite: registration from
runs, descriptions and tags, search, aliases, and stage transitions that go through the promotion
policy (a refusal is an MLflow error naming the failed rules, recorded in the stage history)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Permission

from experiments.errors import InvalidParameterError, ResourceConflictError
from experiments.models import Run
from experiments.services import run_artifact_store
from experiments.train import MLMODEL_ARTIFACT, MODEL_ARTIFACT, mlmodel_bytes
from registry.errors import PromotionConflict, RegistryError
from registry.models import ModelAlias, ModelVersion, RegisteredModel, StageTransition
from tests.experiments import conftest as tracking

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::FutureWarning"),  # MLflow deprecates stages, we keep them
]

# The live server and the MLflow client pointed at it (MLFLOW_TRACKING_TOKEN), as in the
# tracking tests.
api_token = tracking.api_token
mlflow_server = tracking.mlflow_server

Outcome = StageTransition.Outcome


@pytest.fixture
def grant(user: Any) -> Callable[..., None]:
    """Give the token's user registry permissions (by codename)."""

    def add(*codenames: str) -> None:
        for codename in codenames:
            user.user_permissions.add(Permission.objects.get(codename=codename))

    return add


@pytest.fixture
def client(mlflow_server: str, grant: Callable[..., None]) -> Any:
    """An MlflowClient whose user may register, promote and delete models."""
    from mlflow import MlflowClient

    grant("add_modelversion", "promote_modelversion", "delete_registeredmodel")
    return MlflowClient()


def _mlflow_model_folder(run: Run) -> Run:
    """Make the run's model folder an MLflow model folder, as experiments.train does (an MLmodel
    file beside model.json): mlflow.register_model looks for one before it calls the server."""
    sha256 = run.artifacts.get(path=MODEL_ARTIFACT).sha256
    data = mlmodel_bytes(run=run, model_sha256=sha256, view=None)
    run_artifact_store(run=run, name=MLMODEL_ARTIFACT, data=data)
    return run


def _error(call: Callable[[], Any]) -> Any:
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as caught:
        call()
    return caught.value


def _raw(url: str, token: str, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{url}/api/2.0/mlflow/{path}"
    with requests.request(method, url, headers=headers, timeout=30, **kwargs) as answer:
        return answer.status_code, answer.json()


def test_register_model_creates_the_model_and_numbered_versions_with_their_lineage(
    client: Any, make_run: Callable[..., Run]
) -> None:
    import mlflow

    first, second = _mlflow_model_folder(make_run()), _mlflow_model_folder(make_run())
    created = mlflow.register_model(f"runs:/{first.run_uuid}/model", "direction")
    again = mlflow.register_model(
        f"runs:/{second.run_uuid}/model", "direction", tags={"desk": "fx"}
    )

    assert (created.name, created.version, created.status) == ("direction", "1", "READY")
    assert created.run_id == first.run_uuid
    assert created.source == f"{first.artifact_uri}/model"  # what the client resolves runs:/ to
    assert (again.version, again.tags, again.current_stage) == ("2", {"desk": "fx"}, "None")
    stored = ModelVersion.objects.get(model__name="direction", version=1)
    artifact = first.artifacts.get(path="model/model.json")
    assert (stored.run_id, stored.artifact_sha256) == (first.pk, artifact.sha256)
    assert stored.feature_view_id == first.feature_view_id
    assert stored.metrics == {"accuracy": 0.6, "roc_auc": 0.6}
    assert stored.created_by.username == "analyst"

    model = client.get_registered_model("direction")
    assert RegisteredModel.objects.get(name="direction").owner.username == "analyst"
    assert [(v.version, v.current_stage) for v in model.latest_versions] == [("2", "None")]
    assert client.get_model_version("direction", "1").run_id == first.run_uuid


def test_a_model_folder_without_mlmodel_is_registered_with_create_model_version(
    client: Any, make_run: Callable[..., Run]
) -> None:
    import mlflow

    run = make_run()  # model/model.json only: no MLmodel file
    refused = _error(lambda: mlflow.register_model(f"runs:/{run.run_uuid}/model", "plain"))
    assert "Unable to find a logged_model" in refused.message  # the client's own check
    assert not ModelVersion.objects.exists()  # (the model was created first, as in MLflow)

    version = client.create_model_version("plain", f"runs:/{run.run_uuid}/model", run.run_uuid)
    assert (version.version, version.source) == ("1", f"runs:/{run.run_uuid}/model")
    assert ModelVersion.objects.get().run_id == run.pk


def test_models_and_versions_carry_descriptions_and_tags(
    client: Any, make_run: Callable[..., Run]
) -> None:
    run = make_run()
    model = client.create_registered_model("momentum", tags={"desk": "fx"}, description="v0")
    assert (model.name, model.tags, model.description) == ("momentum", {"desk": "fx"}, "v0")
    version = client.create_model_version(
        "momentum",
        f"runs:/{run.run_uuid}/model",
        run.run_uuid,
        tags={"data": "2024"},
        description="first fit",
    )
    assert (version.tags, version.description) == ({"data": "2024"}, "first fit")

    client.update_registered_model("momentum", description="daily momentum")
    client.set_registered_model_tag("momentum", "owner", "quant-team")
    client.delete_registered_model_tag("momentum", "desk")
    client.delete_registered_model_tag("momentum", "never-set")  # MLflow: no error
    client.update_model_version("momentum", "1", description="refit with costs")
    client.set_model_version_tag("momentum", "1", "validated", "yes")
    client.delete_model_version_tag("momentum", "1", "data")

    model = client.get_registered_model("momentum")
    assert (model.description, model.tags) == ("daily momentum", {"owner": "quant-team"})
    version = client.get_model_version("momentum", "1")
    assert (version.description, version.tags) == ("refit with costs", {"validated": "yes"})
    stored = RegisteredModel.objects.get(name="momentum")
    assert (stored.tags, stored.owner.username) == ({"owner": "quant-team"}, "analyst")


def test_search_filters_orders_and_pages(client: Any, make_run: Callable[..., Run]) -> None:
    runs = {}
    for name, desk in [("dir-fx", "fx"), ("dir-rates", "rates"), ("vol-fx", "fx")]:
        client.create_registered_model(name, tags={"desk": desk})
        for _ in range(2):
            run = make_run()
            client.create_model_version(name, f"runs:/{run.run_uuid}/model", run.run_uuid)
            runs.setdefault(name, []).append(run.run_uuid)

    def names(**kwargs: Any) -> list[str]:
        return [m.name for m in client.search_registered_models(**kwargs)]

    assert names() == ["dir-fx", "dir-rates", "vol-fx"]
    assert names(filter_string="name LIKE 'dir-%'") == ["dir-fx", "dir-rates"]
    assert names(filter_string="name = 'vol-fx'") == ["vol-fx"]
    assert names(filter_string="tags.desk = 'fx'", order_by=["name DESC"]) == ["vol-fx", "dir-fx"]
    first = client.search_registered_models(max_results=2)
    rest = client.search_registered_models(max_results=2, page_token=first.token)
    assert [m.name for m in [*first, *rest]] == ["dir-fx", "dir-rates", "vol-fx"]
    assert not rest.token

    def versions(filter_string: str, **kwargs: Any) -> list[tuple[str, str]]:
        found = client.search_model_versions(filter_string, **kwargs)
        return [(v.name, v.version) for v in found]

    assert versions("name='dir-fx'") == [("dir-fx", "2"), ("dir-fx", "1")]
    assert versions(f"run_id='{runs['vol-fx'][0]}'") == [("vol-fx", "1")]
    assert versions("name LIKE 'dir%' AND version_number > 1", order_by=["name DESC"]) == [
        ("dir-rates", "2"),
        ("dir-fx", "2"),
    ]
    assert len(versions("")) == 6
    page = client.search_model_versions("name = 'dir-fx'", max_results=1)
    assert page.token and [v.version for v in page] == ["2"]

    for bad_filter in (
        "metrics.x > 1",
        "version_number > 99999999999",
        "creation_timestamp > 1e30",
    ):
        bad = _error(lambda bad_filter=bad_filter: client.search_model_versions(bad_filter))
        assert bad.error_code == "INVALID_PARAMETER_VALUE"
    assert versions("creation_timestamp > 0 AND source_path LIKE 'runs:/%'")[:1] == [
        ("vol-fx", "2")
    ]
    bad = _error(lambda: client.search_registered_models(order_by=["tags.desk"]))
    assert bad.error_code == "INVALID_PARAMETER_VALUE"


def test_stage_transitions_go_through_the_promotion_policy(
    client: Any, make_run: Callable[..., Run]
) -> None:
    client.create_registered_model("direction")
    for roc_auc in (0.6, 0.7, 0.65, 0.66):
        run = make_run(metrics={"accuracy": 0.6, "roc_auc": roc_auc})
        client.create_model_version("direction", f"runs:/{run.run_uuid}/model", run.run_uuid)

    staged = client.transition_model_version_stage("direction", "1", "staging")
    assert staged.current_stage == "Staging"
    live = client.transition_model_version_stage("direction", "1", "Production")
    assert live.current_stage == "Production"
    # MLflow's default archive_existing_versions=False would leave two Production versions;
    # here Production holds one version, so the previous one is archived regardless.
    replaced = client.transition_model_version_stage(
        "direction", "2", "Production", archive_existing_versions=False
    )
    assert replaced.current_stage == "Production"
    assert client.get_model_version("direction", "1").current_stage == "Archived"

    client.transition_model_version_stage("direction", "3", "Staging")
    client.transition_model_version_stage(
        "direction", "4", "Staging", archive_existing_versions=True
    )
    assert client.get_model_version("direction", "3").current_stage == "Archived"

    latest = client.get_latest_versions("direction", stages=["Production", "Staging"])
    assert sorted((v.version, v.current_stage) for v in latest) == [
        ("2", "Production"),
        ("4", "Staging"),
    ]
    every = {v.current_stage: v.version for v in client.get_latest_versions("direction")}
    assert every == {"Archived": "3", "Production": "2", "Staging": "4"}

    history = list(StageTransition.objects.order_by("id").values_list(
        "version__version", "from_stage", "to_stage", "outcome", "actor__username"
    ))  # fmt: skip
    assert history == [
        (1, "None", "Staging", Outcome.APPLIED, "analyst"),
        (1, "Staging", "Production", Outcome.APPLIED, "analyst"),
        (1, "Production", "Archived", Outcome.APPLIED, "analyst"),
        (2, "None", "Production", Outcome.APPLIED, "analyst"),
        (3, "None", "Staging", Outcome.APPLIED, "analyst"),
        (4, "None", "Staging", Outcome.APPLIED, "analyst"),
        (3, "Staging", "Archived", Outcome.APPLIED, "analyst"),
    ]
    assert StageTransition.objects.filter(reason__startswith="MLflow transition-stage").count() == 5


def test_a_refused_promotion_is_an_mlflow_error_naming_the_failed_rules(
    client: Any, make_run: Callable[..., Run]
) -> None:
    import mlflow

    weak = _mlflow_model_folder(make_run(metrics={"accuracy": 0.5, "roc_auc": 0.51}))
    mlflow.register_model(f"runs:/{weak.run_uuid}/model", "coin-flip")

    refused = _error(lambda: client.transition_model_version_stage("coin-flip", "1", "Production"))
    assert refused.error_code == "INVALID_STATE"
    assert "refused coin-flip v1 -> Production" in refused.message
    assert "min_metric: accuracy 0.5 is below the minimum 0.52" in refused.message
    assert "min_metric: roc_auc 0.51 is below the minimum 0.52" in refused.message
    assert client.get_model_version("coin-flip", "1").current_stage == "None"
    attempt = StageTransition.objects.get()  # recorded once: a 409 is not retried
    assert (attempt.outcome, attempt.to_stage, attempt.actor.username) == (
        Outcome.REFUSED,
        "Production",
        "analyst",
    )
    assert [r["rule"] for r in attempt.policy_results if not r["passed"]] == [
        "min_metric",
        "min_metric",
    ]


def test_stages_and_aliases_need_the_promote_permission(
    mlflow_server: str, grant: Callable[..., None], make_version: Callable[..., ModelVersion]
) -> None:
    from mlflow import MlflowClient

    make_version("direction")
    client = MlflowClient()
    denied = _error(lambda: client.create_registered_model("other"))
    assert denied.error_code == "PERMISSION_DENIED"
    assert "registry.add_modelversion" in denied.message
    grant("add_modelversion")
    client.create_registered_model("other")
    for call in (
        lambda: client.transition_model_version_stage("direction", "1", "Staging"),
        lambda: client.set_registered_model_alias("direction", "champion", "1"),
        lambda: client.delete_registered_model("other"),
    ):
        assert _error(call).error_code == "PERMISSION_DENIED"
    assert not StageTransition.objects.exists()
    assert not ModelAlias.objects.exists()
    assert RegisteredModel.objects.filter(name="other").exists()


def test_aliases_round_trip(client: Any, make_version: Callable[..., ModelVersion]) -> None:
    make_version("direction")
    make_version("direction")

    client.set_registered_model_alias("direction", "champion", "1")
    champion = client.get_model_version_by_alias("direction", "champion")
    assert (champion.version, champion.aliases) == ("1", ["champion"])
    client.set_registered_model_alias("direction", "champion", "2")  # moves it
    client.set_registered_model_alias("direction", "challenger", "1")
    assert client.get_registered_model("direction").aliases == {"champion": "2", "challenger": "1"}
    assert client.get_model_version("direction", "2").aliases == ["champion"]
    assert client.get_model_version_by_alias("direction", "latest").version == "2"

    client.delete_registered_model_alias("direction", "champion")
    client.delete_registered_model_alias("direction", "champion")  # MLflow: absent is fine
    gone = _error(lambda: client.get_model_version_by_alias("direction", "champion"))
    assert gone.error_code == "RESOURCE_DOES_NOT_EXIST"
    for bad in ("production", "9lives"):
        refused = _error(lambda bad=bad: client.set_registered_model_alias("direction", bad, "1"))
        assert refused.error_code == "INVALID_PARAMETER_VALUE"
    missing = _error(lambda: client.set_registered_model_alias("direction", "next", "7"))
    assert missing.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert list(ModelAlias.objects.values_list("alias", "version__version")) == [("challenger", 1)]


def test_bad_input_gets_mlflow_errors_and_writes_nothing(
    client: Any, make_run: Callable[..., Run], make_version: Callable[..., ModelVersion]
) -> None:
    make_version("direction")
    good = make_run()
    source = f"runs:/{good.run_uuid}/model"

    def code(call: Callable[[], Any]) -> str:
        return _error(call).error_code

    assert code(lambda: client.get_registered_model("nope")) == "RESOURCE_DOES_NOT_EXIST"
    assert code(lambda: client.get_model_version("direction", "9")) == "RESOURCE_DOES_NOT_EXIST"
    assert code(lambda: client.get_model_version("nope", "1")) == "RESOURCE_DOES_NOT_EXIST"
    assert code(lambda: client.create_registered_model("direction")) == "RESOURCE_ALREADY_EXISTS"
    assert code(lambda: client.create_registered_model("a/b")) == "INVALID_PARAMETER_VALUE"
    assert (
        code(lambda: client.create_model_version("nope", source, good.run_uuid))
        == "RESOURCE_DOES_NOT_EXIST"
    )

    bad_stage = _error(lambda: client.transition_model_version_stage("direction", "1", "Prod"))
    assert bad_stage.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid Model Version stage: 'Prod'" in bad_stage.message
    archive = _error(
        lambda: client.transition_model_version_stage(
            "direction", "1", "Archived", archive_existing_versions=True
        )
    )
    assert archive.error_code == "INVALID_PARAMETER_VALUE"
    assert not StageTransition.objects.exists()

    s3 = _error(lambda: client.create_model_version("direction", "s3://bucket/model"))
    assert (s3.error_code, "runs:/<run_id>/model" in s3.message) == (
        "INVALID_PARAMETER_VALUE",
        True,
    )
    other_path = _error(
        lambda: client.create_model_version("direction", f"runs:/{good.run_uuid}/weights")
    )
    assert other_path.error_code == "INVALID_PARAMETER_VALUE"
    assert "model/model.json" in other_path.message
    mismatch = _error(lambda: client.create_model_version("direction", source, "f" * 32))
    assert mismatch.error_code == "INVALID_PARAMETER_VALUE"
    unknown_run = _error(
        lambda: client.create_model_version("direction", f"runs:/{'0' * 32}/model")
    )
    assert unknown_run.error_code == "RESOURCE_DOES_NOT_EXIST"
    no_model = make_run(with_model=False)
    missing = _error(
        lambda: client.create_model_version("direction", f"runs:/{no_model.run_uuid}/model")
    )
    assert missing.error_code == "INVALID_PARAMETER_VALUE"
    assert "has no model artifact at 'model/model.json'" in missing.message
    running = make_run(finish=False)
    unfinished = _error(
        lambda: client.create_model_version("direction", f"runs:/{running.run_uuid}/model")
    )
    assert "only a FINISHED run can be registered" in unfinished.message
    assert ModelVersion.objects.count() == 1
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["direction"]


def test_a_model_is_deleted_only_while_nothing_depends_on_it(
    client: Any, make_version: Callable[..., ModelVersion]
) -> None:
    client.create_registered_model("typo")
    make_version("mistake")
    live = make_version("direction")
    client.transition_model_version_stage("direction", str(live.version), "Production")
    make_version("retired")
    client.transition_model_version_stage("retired", "1", "Archived")

    client.delete_registered_model("typo")
    client.delete_registered_model("mistake")  # a version never moved between stages
    production = _error(lambda: client.delete_registered_model("direction"))
    assert production.error_code == "INVALID_STATE"
    assert "direction v1 is in Production" in production.message
    history = _error(lambda: client.delete_registered_model("retired"))
    assert (history.error_code, "stage transition(s)" in history.message) == ("INVALID_STATE", True)
    assert sorted(RegisteredModel.objects.values_list("name", flat=True)) == [
        "direction",
        "retired",
    ]
    assert ModelVersion.objects.count() == 2
    assert _error(lambda: client.delete_registered_model("typo")).error_code == (
        "RESOURCE_DOES_NOT_EXIST"
    )


def test_the_rest_endpoints_take_get_query_and_delete_body_forms(
    client: Any, mlflow_server: str, api_token: str, make_version: Callable[..., ModelVersion]
) -> None:
    make_version("direction")
    client.set_registered_model_alias("direction", "champion", "1")
    status, body = _raw(
        mlflow_server, api_token, "GET", "registered-models/get-latest-versions",
        params={"name": "direction", "stages": ["None", "Production"]},
    )  # fmt: skip
    assert (status, [v["version"] for v in body["model_versions"]]) == (200, ["1"])
    status, _ = _raw(
        mlflow_server, api_token, "DELETE", "registered-models/alias",
        params={"name": "direction", "alias": "champion"},
    )  # fmt: skip
    assert status == 200
    assert not ModelAlias.objects.exists()
    status, body = _raw(mlflow_server, api_token, "POST", "model-versions/delete", json={})
    assert (status, body["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    status, body = _raw(
        mlflow_server, api_token, "POST", "model-versions/transition-stage",
        json={"name": "direction", "version": "1", "stage": "Staging",
              "archive_existing_versions": "maybe"},
    )  # fmt: skip
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert not StageTransition.objects.exists()


def test_registry_errors_map_to_mlflow_codes() -> None:
    from experiments.mlflow_compat.registry import _registry_errors

    with pytest.raises(ResourceConflictError) as conflict, _registry_errors():
        raise PromotionConflict("direction: the Production version changed", transition_id=7)
    assert conflict.value.error_code == "RESOURCE_CONFLICT"
    assert conflict.value.mlflow_status == 409
    assert "transition 7" in conflict.value.message
    with pytest.raises(InvalidParameterError), _registry_errors():
        raise RegistryError("a reason is required")


@pytest.mark.django_db
def test_a_model_whose_versions_served_predictions_is_kept(
    make_version: Callable[..., ModelVersion],
) -> None:
    from django.utils import timezone

    from registry.models import PredictionLog
    from registry.services import ModelInUse, registered_model_delete

    version = make_version("served")
    PredictionLog.objects.create(
        model_version=version, symbol="AAPL", as_of=timezone.now(), features=[0.1],
        probability=0.6, signal="long", stale=False, latency_ms=1.0,
    )  # fmt: skip
    with pytest.raises(ModelInUse, match="prediction logs that would be deleted with it"):
        registered_model_delete(model=version.model)
    assert PredictionLog.objects.filter(model_version=version).exists()
