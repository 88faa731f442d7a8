"""MLflow's model-registry REST API (/api/2.0/mlflow/registered-models/..., model-versions/...)
on top of the registry's services, so `mlflow.register_model` and MlflowClient's registry calls
work against tradingsite.

- Versions are registered from a run only (`runs:/<run id>/model`, or the run's artifact URI
  that `mlflow.register_model` resolves it to) through model_version_create_from_run: the run
  must be FINISHED and carry the JSON model at experiments.train.MODEL_ARTIFACT. They are READY
  at once.
- Every stage change goes through registry.services.version_transition: the promotion policy
  applies, every attempt is in the stage history, and a refusal answers INVALID_STATE (HTTP 409,
  not MLflow's 500, which its client would retry) naming each failed rule. MLflow has no
  override: overriding the policy stays in the native API and the admin.
- archive_existing_versions: entering Production always archives the previous Production
  version (one Production version per model), whatever the flag; for Staging, true archives the
  other Staging versions, each through version_transition; for None/Archived it is refused.
- Writes need the native API's permissions: registering (models, versions, their descriptions
  and tags) registry.add_modelversion; stages and aliases registry.promote_modelversion;
  deleting a model registry.delete_registeredmodel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments import validation
from experiments.constants import MLFLOW_ARTIFACTS_SCHEME
from experiments.errors import (
    InvalidParameterError,
    InvalidStateError,
    ResourceAlreadyExistsError,
    ResourceConflictError,
    ResourceDoesNotExistError,
)
from experiments.mlflow_compat import serializers as s
from experiments.mlflow_compat.protocol import (
    offset_of,
    optional_int,
    page_body,
    required,
    required_str,
    string_list,
)
from experiments.mlflow_compat.views import MlflowApiView
from experiments.models import Run
from experiments.selectors import datetime_to_ms, run_get
from registry import selectors, services
from registry.errors import (
    ArtifactIntegrityError,
    NotPermitted,
    PromotionConflict,
    PromotionRefused,
    RegistryError,
)
from registry.models import ModelAlias, ModelVersion, RegisteredModel, Stage
from registry.policy import PROMOTE_PERMISSION, PolicyError

Handler = Callable[[Request, dict[str, Any]], dict[str, Any]]
REGISTER_PERMISSION = "registry.add_modelversion"
DELETE_MODEL_PERMISSION = "registry.delete_registeredmodel"
_STAGES = {stage.lower(): stage for stage in Stage.values}
_LIST_FIELDS = frozenset({"order_by", "stages"})
_ERRORS = {code: s.MlflowErrorSerializer for code in (400, 401, 403, 404, 409)}
# MLflow's page sizes (default, most): registered models 100 / 1,000, versions 10,000 / 200,000.
MODELS_PAGE = (100, 1000)
VERSIONS_PAGE = (10_000, 200_000)


# --- requests, errors, permissions ----------------------------------------------------------------


def _fields(request: Request) -> dict[str, Any]:
    """A GET's query parameters (order_by and stages repeat); otherwise the JSON body, which a
    DELETE from MLflow's client carries too (query parameters are read when it has none)."""
    if request.method == "DELETE" and request.data:
        data: Any = request.data
    elif request.method in ("GET", "DELETE"):
        query = request.query_params
        return {k: query.getlist(k) if k in _LIST_FIELDS else query.get(k) for k in query}
    else:
        data = request.data
    if not isinstance(data, Mapping):
        raise InvalidParameterError("the request body must be a JSON object")
    return dict(data)


@contextmanager
def _registry_errors() -> Iterator[None]:
    """The registry's errors as MLflow's: a policy refusal names every failed rule."""
    try:
        yield
    except PromotionRefused as exc:
        failed = "; ".join(f"{r['rule']}: {r['reason']}" for r in exc.results if not r["passed"])
        raise InvalidStateError(
            f"{exc}. Failed rules: {failed}. Recorded in the stage history as transition "
            f"{exc.transition_id}; overriding the policy is done in the native API or the admin."
        ) from exc
    except PromotionConflict as exc:
        raise ResourceConflictError(f"{exc} (recorded as transition {exc.transition_id})") from exc
    except NotPermitted as exc:
        raise PermissionDenied(str(exc)) from exc
    except (ArtifactIntegrityError, services.ModelInUse) as exc:
        raise InvalidStateError(str(exc)) from exc
    except RegistryError as exc:
        raise InvalidParameterError(str(exc)) from exc
    except PolicyError as exc:  # the promotion policy file cannot be used: it names the problem
        raise InvalidStateError(str(exc)) from exc


def _model(fields: dict[str, Any]) -> RegisteredModel:
    name = required_str(fields, "name")
    found = selectors.registered_models_detailed().filter(name=name).first()
    if found is None:
        raise ResourceDoesNotExistError(f"Registered Model with name={name} not found")
    return found


def _version_of(model: RegisteredModel, number: Any) -> ModelVersion:
    number = validation.int64(number, field="version", minimum=1)
    found = selectors.model_versions_detailed().filter(model=model, version=number).first()
    if found is None:
        raise ResourceDoesNotExistError(
            f"Model Version (name={model.name}, version={number}) not found"
        )
    return found


def _version(fields: dict[str, Any]) -> ModelVersion:
    return _version_of(_model(fields), required(fields, "version"))


def _stage(value: Any) -> str:
    stage = _STAGES.get(value.strip().lower()) if isinstance(value, str) else None
    if stage is None:
        raise InvalidParameterError(
            f"Invalid Model Version stage: {value!r}. Value must be one of {Stage.values} "
            "(any letter case)."
        )
    return stage


def _tags(fields: dict[str, Any]) -> dict[str, Any]:
    """MLflow's [{"key", "value"}, ...] as a dict (a repeated key: the last value wins)."""
    tags = fields.get("tags") or []
    if not isinstance(tags, list) or not all(
        isinstance(t, Mapping) and isinstance(t.get("key"), str) for t in tags
    ):
        raise InvalidParameterError('tags: a list of {"key": ..., "value": ...} objects')
    return {t["key"]: t.get("value", "") for t in tags}


def _flag(fields: dict[str, Any], name: str) -> bool:
    value = fields.get(name)
    if value in (None, "", False, "false", "False"):
        return False
    if value in (True, "true", "True"):
        return True
    raise InvalidParameterError(f"Invalid value {value!r} for parameter '{name}': a boolean")


def _page(fields: dict[str, Any], sizes: tuple[int, int]) -> tuple[int, int]:
    """(limit, offset) of a search request."""
    limit = optional_int(fields, "max_results")
    if limit is None:
        limit = sizes[0]
    if not 1 <= limit <= sizes[1]:
        raise InvalidParameterError(
            "Invalid value for request parameter max_results. It must be at most "
            f"{sizes[1]}, but got value {limit}"
        )
    return limit, offset_of(fields.get("page_token"))


# --- entities -------------------------------------------------------------------------------------


def _key_values(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted((tags or {}).items())]


def model_version_json(version: ModelVersion) -> dict[str, Any]:
    """A version from selectors.model_versions_detailed()."""
    changed = getattr(version, "last_changed_at", None) or version.created_at
    return {
        "name": version.model.name,
        "version": str(version.version),
        "creation_timestamp": datetime_to_ms(version.created_at),
        "last_updated_timestamp": datetime_to_ms(changed),
        "user_id": getattr(version.created_by, "username", "") or "",
        "current_stage": version.stage,
        "description": version.description,
        "source": version.source,
        "run_id": version.run.run_uuid if version.run is not None else "",
        "status": "READY",
        "tags": _key_values(version.tags),
        "run_link": "",
        "aliases": sorted(alias.alias for alias in version.aliases.all()),
    }


def registered_model_json(model: RegisteredModel) -> dict[str, Any]:
    """A model from selectors.registered_models_detailed(): latest_versions holds the newest
    version of each stage."""
    latest: dict[str, ModelVersion] = {}
    for version in model.versions.all():  # newest first
        latest.setdefault(version.stage, version)
    return {
        "name": model.name,
        "creation_timestamp": datetime_to_ms(model.created_at),
        "last_updated_timestamp": datetime_to_ms(model.updated_at),
        "user_id": getattr(model.owner, "username", "") or "",
        "description": model.description,
        "latest_versions": [
            model_version_json(v) for v in sorted(latest.values(), key=lambda v: v.version)
        ],
        "tags": _key_values(model.tags),
        "aliases": [
            {"alias": a.alias, "version": str(a.version.version)} for a in model.aliases.all()
        ],
    }


def _model_body(name: str) -> dict[str, Any]:
    return {"registered_model": registered_model_json(_model({"name": name}))}


def _version_body(version: ModelVersion) -> dict[str, Any]:
    return {"model_version": model_version_json(_version_of(version.model, version.version))}


def _needs(permission: str) -> Callable[[Handler], Handler]:
    """Marks a write handler with the permission it needs; its view checks it after
    authentication and before the body is read (MlflowApiView.write_permissions), so a caller
    without it gets 403 whatever the body holds."""

    def mark(handler: Handler) -> Handler:
        handler.permission = permission  # type: ignore[attr-defined]
        return handler

    return mark


# --- registered models ----------------------------------------------------------------------------


@_needs(REGISTER_PERMISSION)
def create_registered_model(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    name = required_str(fields, "name")
    model, created = services.registered_model_create(
        name=name,
        owner=request.user,
        description=fields.get("description") or "",
        tags=_tags(fields),
    )
    if not created:
        raise ResourceAlreadyExistsError(f"Registered Model (name={name}) already exists.")
    return _model_body(model.name)


def get_registered_model(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"registered_model": registered_model_json(_model(fields))}


def search_registered_models(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    limit, offset = _page(fields, MODELS_PAGE)
    found = selectors.registered_model_search(
        filter_string=fields.get("filter") or "", order_by=string_list(fields, "order_by")
    )
    return page_body(
        "registered_models", found, offset=offset, limit=limit,
        to_json=lambda page: [registered_model_json(m) for m in page],
    )  # fmt: skip


@_needs(REGISTER_PERMISSION)
def update_registered_model(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    model = _model(fields)
    services.registered_model_update(model=model, description=fields.get("description") or "")
    return _model_body(model.name)


@_needs(DELETE_MODEL_PERMISSION)
def delete_registered_model(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.registered_model_delete(model=_model(fields))
    return {}


def get_latest_versions(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    stages = {_stage(stage) for stage in string_list(fields, "stages")} or set(Stage.values)
    body = registered_model_json(_model(fields))
    return {"model_versions": [v for v in body["latest_versions"] if v["current_stage"] in stages]}


@_needs(REGISTER_PERMISSION)
def set_registered_model_tag(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.registered_model_tag_set(
        model=_model(fields), key=required_str(fields, "key"), value=fields.get("value") or ""
    )
    return {}


@_needs(REGISTER_PERMISSION)
def delete_registered_model_tag(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.registered_model_tag_delete(model=_model(fields), key=required_str(fields, "key"))
    return {}


# --- aliases --------------------------------------------------------------------------------------


@_needs(PROMOTE_PERMISSION)
def set_registered_model_alias(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    version = _version(fields)
    alias = required_str(fields, "alias")
    services.model_alias_set(model=version.model, alias=alias, version=version)
    return {}


@_needs(PROMOTE_PERMISSION)
def delete_registered_model_alias(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    model, alias = _model(fields), required_str(fields, "alias")
    if ModelAlias.objects.filter(model=model, alias=alias).exists():  # MLflow: absent is fine
        services.model_alias_delete(model=model, alias=alias)
    return {}


def get_model_version_by_alias(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    model, alias = _model(fields), required_str(fields, "alias")
    if alias.lower() == "latest":  # MLflow's reserved alias: the newest version
        newest = model.versions.all()[:1]
        if not newest:
            raise ResourceDoesNotExistError(f"Latest version not found for model {model.name}.")
        return _version_body(newest[0])
    row = model.aliases.filter(alias=alias).select_related("version").first()
    if row is None:
        raise ResourceDoesNotExistError(f"Registered model alias {alias} not found.")
    return _version_body(row.version)


# --- versions -------------------------------------------------------------------------------------


def _source_run(fields: dict[str, Any]) -> Run:
    """The run whose model `source` names: runs:/<run id>/model, or what mlflow.register_model
    sends for it, the run's artifact URI + /model (with run_id)."""
    from experiments.train import MODEL_ARTIFACT

    folder = MODEL_ARTIFACT.rsplit("/", 1)[0]
    source, run_id = required_str(fields, "source"), fields.get("run_id") or None
    if fields.get("model_id"):
        raise InvalidParameterError(
            "model_id: logged models are not supported; register a run's model with "
            f"source runs:/<run_id>/{folder}"
        )
    if source.startswith("runs:/") and not source.startswith("runs://"):
        source_run_id, _, where = source.removeprefix("runs:/").partition("/")
        if run_id and run_id != source_run_id:
            raise InvalidParameterError(
                f"Invalid model version source {source!r}: it names run {source_run_id}, "
                f"but run_id is {run_id}"
            )
        run = run_get(run_id=source_run_id)
    elif source.startswith(f"{MLFLOW_ARTIFACTS_SCHEME}/") and run_id:
        run = run_get(run_id=run_id)
        if not source.startswith(f"{run.artifact_uri}/"):
            raise InvalidParameterError(
                f"Invalid model version source {source!r}: it is not in the artifacts of run "
                f"{run_id} ({run.artifact_uri})"
            )
        where = source.removeprefix(f"{run.artifact_uri}/")
    else:
        raise InvalidParameterError(
            f"Invalid model version source {source!r}: tradingsite registers the model of a "
            f"run, so the source must be runs:/<run_id>/{folder} (or that run's artifact URI "
            "with run_id)"
        )
    if where.strip("/") != folder:
        raise InvalidParameterError(
            f"Invalid model version source {source!r}: a run's registrable model is its "
            f"{MODEL_ARTIFACT}, so the source must be runs:/{run.run_uuid}/{folder}"
        )
    return run


@_needs(REGISTER_PERMISSION)
def create_model_version(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    model = _model(fields)
    run = _source_run(fields)
    version = services.model_version_register(
        model=model,
        run=run,
        user=request.user,
        source=fields["source"],
        description=fields.get("description") or "",
        tags=_tags(fields),
    )
    return _version_body(version)


def get_model_version(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"model_version": model_version_json(_version(fields))}


@_needs(REGISTER_PERMISSION)
def update_model_version(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    version = _version(fields)
    services.model_version_update(version=version, description=fields.get("description") or "")
    return _version_body(version)


def search_model_versions(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    limit, offset = _page(fields, VERSIONS_PAGE)
    found = selectors.model_version_search(
        filter_string=fields.get("filter") or "", order_by=string_list(fields, "order_by")
    )
    return page_body(
        "model_versions", found, offset=offset, limit=limit,
        to_json=lambda page: [model_version_json(v) for v in page],
    )  # fmt: skip


@_needs(PROMOTE_PERMISSION)
def transition_model_version_stage(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    version = _version(fields)
    stage = _stage(required(fields, "stage"))
    archive = _flag(fields, "archive_existing_versions")
    if archive and stage not in (Stage.STAGING, Stage.PRODUCTION):
        raise InvalidParameterError(
            f"archive_existing_versions applies to Staging and Production only, not {stage}"
        )
    reason = f"MLflow transition-stage to {stage}" + (
        " (archive_existing_versions)" if archive else ""
    )
    services.version_transition(version=version, to_stage=stage, actor=request.user, reason=reason)
    if archive and stage == Stage.STAGING:  # Production archives its previous holder anyway
        services.stage_versions_archive(
            model=version.model,
            stage=stage,
            keep=version,
            actor=request.user,
            reason=f"archive_existing_versions: v{version.version} entered {stage}",
        )
    return _version_body(version)


@_needs(REGISTER_PERMISSION)
def set_model_version_tag(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.model_version_tag_set(
        version=_version(fields), key=required_str(fields, "key"), value=fields.get("value") or ""
    )
    return {}


@_needs(REGISTER_PERMISSION)
def delete_model_version_tag(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.model_version_tag_delete(version=_version(fields), key=required_str(fields, "key"))
    return {}


# --- the endpoints --------------------------------------------------------------------------------

Method = tuple[Handler, type | None, type]  # handler, request fields, response (for the schema)


def _view(name: str, summary: str, **methods: Method) -> type[APIView]:
    """An authenticated view answering `methods` (e.g. post=..., get=...) with their handlers,
    registry errors turned into MLflow's."""
    attributes: dict[str, Any] = {"__doc__": summary, "write_permissions": {}}
    for method, (handler, fields, response) in methods.items():
        if getattr(handler, "permission", None) is not None:
            attributes["write_permissions"][method.upper()] = handler.permission

        def call(self: APIView, request: Request, _handler: Handler = handler) -> Response:
            with _registry_errors():
                return Response(_handler(request, _fields(request)))

        in_query = method in ("get", "delete")  # MLflow's client sends a DELETE's fields as JSON
        suffix = f"_{method}" if len(methods) > 1 else ""
        attributes[method] = extend_schema(
            operation_id=f"mlflow_{handler.__name__}{suffix}",
            summary=summary if len(methods) == 1 else f"{summary} ({handler.__name__})",
            tags=["mlflow"],
            request=None if in_query else fields,
            parameters=[fields] if in_query and fields is not None else None,
            responses={200: response, **_ERRORS},
        )(call)
    return type(name, (MlflowApiView,), attributes)


_EMPTY = s.MlflowEmptySerializer
_MODEL = s.RegisteredModelResponse
_VERSION = s.ModelVersionResponse

registry_urlpatterns = [
    path("registered-models/create", _view(
        "CreateRegisteredModelView", "Create a registered model.",
        post=(create_registered_model, s.CreateRegisteredModelRequest, _MODEL),
    ).as_view()),
    path("registered-models/get", _view(
        "GetRegisteredModelView", "A registered model with its latest version per stage.",
        get=(get_registered_model, s.RegisteredModelNameRequest, _MODEL),
    ).as_view()),
    path("registered-models/search", _view(
        "SearchRegisteredModelsView", "Search registered models (name, tags; order_by; pages).",
        get=(search_registered_models, s.SearchRegistryRequest, s.SearchRegisteredModelsResponse),
    ).as_view()),
    path("registered-models/update", _view(
        "UpdateRegisteredModelView", "Set a registered model's description.",
        patch=(update_registered_model, s.UpdateDescriptionRequest, _MODEL),
    ).as_view()),
    path("registered-models/delete", _view(
        "DeleteRegisteredModelView",
        "Delete a registered model that has no stage history and nothing depending on it.",
        delete=(delete_registered_model, s.RegisteredModelNameRequest, _EMPTY),
    ).as_view()),
    path("registered-models/get-latest-versions", _view(
        "GetLatestVersionsView", "The newest version in each (requested) stage.",
        post=(get_latest_versions, s.GetLatestVersionsRequest, s.ModelVersionsResponse),
        get=(get_latest_versions, s.GetLatestVersionsRequest, s.ModelVersionsResponse),
    ).as_view()),
    path("registered-models/set-tag", _view(
        "SetRegisteredModelTagView", "Set a tag of a registered model.",
        post=(set_registered_model_tag, s.RegisteredModelTagRequest, _EMPTY),
    ).as_view()),
    path("registered-models/delete-tag", _view(
        "DeleteRegisteredModelTagView", "Delete a tag of a registered model.",
        delete=(delete_registered_model_tag, s.RegisteredModelTagKeyRequest, _EMPTY),
    ).as_view()),
    path("registered-models/alias", _view(
        "RegisteredModelAliasView", "Set, delete or resolve an alias of a registered model.",
        post=(set_registered_model_alias, s.SetAliasRequest, _EMPTY),
        delete=(delete_registered_model_alias, s.AliasRequest, _EMPTY),
        get=(get_model_version_by_alias, s.AliasRequest, _VERSION),
    ).as_view()),
    path("model-versions/create", _view(
        "CreateModelVersionView",
        "Register a FINISHED run's model (source runs:/<run_id>/model) as the next version.",
        post=(create_model_version, s.CreateModelVersionRequest, _VERSION),
    ).as_view()),
    path("model-versions/get", _view(
        "GetModelVersionView", "A model version.",
        get=(get_model_version, s.ModelVersionRequest, _VERSION),
    ).as_view()),
    path("model-versions/update", _view(
        "UpdateModelVersionView", "Set a model version's description.",
        patch=(update_model_version, s.UpdateVersionDescriptionRequest, _VERSION),
    ).as_view()),
    path("model-versions/search", _view(
        "SearchModelVersionsView",
        "Search model versions (name, run_id, version_number, source_path, tags; pages).",
        get=(search_model_versions, s.SearchRegistryRequest, s.SearchModelVersionsResponse),
    ).as_view()),
    path("model-versions/transition-stage", _view(
        "TransitionModelVersionStageView",
        "Move a version to a stage through the promotion policy (409 INVALID_STATE if refused).",
        post=(transition_model_version_stage, s.TransitionStageRequest, _VERSION),
    ).as_view()),
    path("model-versions/set-tag", _view(
        "SetModelVersionTagView", "Set a tag of a model version.",
        post=(set_model_version_tag, s.ModelVersionTagRequest, _EMPTY),
    ).as_view()),
    path("model-versions/delete-tag", _view(
        "DeleteModelVersionTagView", "Delete a tag of a model version.",
        delete=(delete_model_version_tag, s.ModelVersionTagKeyRequest, _EMPTY),
    ).as_view()),
]  # fmt: skip
