"""MLflow's tracking REST API (/api/2.0/mlflow/...) and artifact proxy
(/api/2.0/mlflow-artifacts/...) on top of our services: the official client works unchanged.

Each endpoint is a handler `(request, fields) -> response dict` wrapped by `_endpoint` into an
authenticated DRF view with its OpenAPI description and the permission a write needs (the
researcher role; reads, POSTed searches included, need a login only). Calls we do not implement
(logged models, datasets, traces, multipart uploads, ...) answer MLflow's ENDPOINT_NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments import selectors, services, validation
from experiments.api.views import artifact_download
from experiments.constants import (
    ADD_EXPERIMENT_PERMISSION,
    ADD_RUN_PERMISSION,
    CHANGE_EXPERIMENT_PERMISSION,
    CHANGE_RUN_PERMISSION,
    DELETE_EXPERIMENT_PERMISSION,
    DELETE_RUN_PERMISSION,
    MLFLOW_MAX_BATCH_BYTES,
)
from experiments.errors import InvalidParameterError, ResourceDoesNotExistError
from experiments.mlflow_compat import serializers as s
from experiments.mlflow_compat.protocol import (
    body_of,
    endpoint_not_found,
    experiment_json,
    max_results_of,
    metric_json,
    mlflow_exception_handler,
    offset_of,
    optional_int,
    page_body,
    require_permission,
    required,
    required_str,
    run_id_of,
    run_info_json,
    run_json,
    status_of,
    string_list,
    view_of,
)
from experiments.models import Experiment, Run
from experiments.services import MLFLOW_LIMITS
from tradingsite.api.parsers import BoundedJSONParser

Handler = Callable[[Request, dict[str, Any]], dict[str, Any]]
_ERRORS = {code: s.MlflowErrorSerializer for code in (400, 401, 403, 404)}


class MlflowApiView(APIView):
    """Authenticated like the rest of the API (a `ts_…` personal token is what MLflow clients
    send as MLFLOW_TRACKING_TOKEN); every error in MLflow's shape.

    `write_permissions` maps a method to the permission it needs, checked after
    authentication and before the request is read: the one place tracking and artifact writes
    are authorized (the registry's endpoints check theirs in their handlers)."""

    renderer_classes = [JSONRenderer]
    parser_classes = [BoundedJSONParser]
    write_permissions: ClassVar[Mapping[str, str]] = {}

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)  # IsAuthenticated: an anonymous caller gets 401
        permission = self.write_permissions.get(request.method or "")
        if permission is not None:
            require_permission(request, permission)

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return mlflow_exception_handler


def _endpoint(
    method: str,
    handler: Handler,
    *,
    permission: str | None,
    fields: type | None,
    response: type,
    summary: str,
) -> type[APIView]:
    """A view answering `method` with `handler`; `permission` is what a caller needs (None: a
    read, open to every signed-in user). It has no default: every endpoint says who may call it.
    """

    def view(self: APIView, request: Request) -> Response:
        return Response(handler(request, body_of(request)))

    schema = extend_schema(
        operation_id=f"mlflow_{handler.__name__}",
        summary=summary,
        tags=["mlflow"],
        request=None if method == "get" else fields,
        parameters=[fields] if method == "get" and fields is not None else None,
        responses={200: response, **_ERRORS},
    )
    name = "".join(part.title() for part in handler.__name__.split("_")) + "View"
    attributes = {method: schema(view), "__doc__": summary}
    if permission is not None:
        attributes["write_permissions"] = {method.upper(): permission}
    return type(name, (MlflowApiView,), attributes)


# --- experiments ----------------------------------------------------------------------------------


def _experiment(fields: dict[str, Any]) -> Experiment:
    return selectors.experiment_get(experiment_id=required(fields, "experiment_id"))


def create_experiment(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    experiment = services.experiment_create(
        name=required_str(fields, "name"),
        tags=fields.get("tags"),
        artifact_location=fields.get("artifact_location"),
    )
    return {"experiment_id": str(experiment.pk)}


def search_experiments(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    limit, offset = max_results_of(fields), offset_of(fields.get("page_token"))
    found = selectors.experiment_search(
        filter_string=fields.get("filter") or "",
        order_by=string_list(fields, "order_by"),
        view=view_of(fields.get("view_type")),
    ).prefetch_related("tags")
    return page_body(
        "experiments", found, offset=offset, limit=limit,
        to_json=lambda page: [experiment_json(e) for e in page],
    )  # fmt: skip


def get_experiment(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"experiment": experiment_json(_experiment(fields))}


def get_experiment_by_name(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    name = required_str(fields, "experiment_name")
    return {"experiment": experiment_json(selectors.experiment_get_by_name(name=name))}


def delete_experiment(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.experiment_delete(experiment=_experiment(fields))
    return {}


def restore_experiment(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.experiment_restore(experiment=_experiment(fields))
    return {}


def update_experiment(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.experiment_update(
        experiment=_experiment(fields), name=required_str(fields, "new_name")
    )
    return {}


def set_experiment_tag(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.experiment_tag_set(
        experiment=_experiment(fields), key=required(fields, "key"), value=fields.get("value", "")
    )
    return {}


def delete_experiment_tag(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.experiment_tag_delete(experiment=_experiment(fields), key=required(fields, "key"))
    return {}


# --- runs -----------------------------------------------------------------------------------------


def _run(fields: dict[str, Any]) -> Run:
    return selectors.run_get(run_id=run_id_of(fields))


def _run_to_log(fields: dict[str, Any]) -> Run:
    return selectors.run_for_logging(run_id=run_id_of(fields))


def _with_details(run: Run) -> Run:
    return selectors.runs_with_details([run])[0]


def create_run(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    run = services.run_create(
        experiment=_experiment(fields),
        name=fields.get("run_name") or "",
        user=request.user,
        user_name=fields.get("user_id") or "",
        tags=fields.get("tags"),
        start_time_ms=optional_int(fields, "start_time", minimum=0),
    )
    return {"run": run_json(_with_details(run))}


def update_run(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    run = services.run_update(
        run=_run(fields),
        status=status_of(fields.get("status")),
        end_time_ms=optional_int(fields, "end_time", minimum=0),
        name=fields.get("run_name") or None,
    )
    return {"run_info": run_info_json(run)}


def delete_run(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.run_delete(run=_run(fields))
    return {}


def restore_run(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.run_restore(run=_run(fields))
    return {}


def get_run(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"run": run_json(_with_details(_run(fields)))}


def search_runs(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        experiment_ids = [int(i) for i in string_list(fields, "experiment_ids")]
    except ValueError:
        raise InvalidParameterError("experiment_ids: experiment ids are integers") from None
    limit, offset = max_results_of(fields), offset_of(fields.get("page_token"))
    found = selectors.run_search(
        experiment_ids=experiment_ids or None,
        filter_string=fields.get("filter") or "",
        order_by=string_list(fields, "order_by"),
        view=view_of(fields.get("run_view_type")),
    )
    return page_body(
        "runs", found, offset=offset, limit=limit,
        to_json=lambda page: [run_json(r) for r in selectors.runs_with_details(page)],
    )  # fmt: skip


def log_metric(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    # Checked here first so that errors name the request's own fields ("value", not
    # "metrics[0].value"). model_id, dataset_name and dataset_digest (MLflow 3) are not stored.
    key = validation.entity_key(required(fields, "key"), field="key")
    validation.metric_value(required(fields, "value"), field="value")
    point = {k: fields.get(k) for k in ("value", "step", "timestamp")}
    services.run_log_batch(
        run=_run_to_log(fields), metrics=[{"key": key, **point}], limits=MLFLOW_LIMITS
    )
    return {}


def log_param(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    key = validation.entity_key(required(fields, "key"), field="key")
    if fields.get("value") is None:
        raise InvalidParameterError("Missing value for required parameter 'value'.")
    params = [{"key": key, "value": fields["value"]}]
    services.run_log_batch(run=_run_to_log(fields), params=params, limits=MLFLOW_LIMITS)
    return {}


def set_tag(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    key = validation.entity_key(required(fields, "key"), field="key")
    services.run_log_batch(
        run=_run_to_log(fields),
        tags=[{"key": key, "value": fields.get("value", "")}],
        limits=MLFLOW_LIMITS,
    )
    return {}


def delete_tag(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    services.run_tag_delete(run=_run(fields), key=required_str(fields, "key"))
    return {}


def log_batch(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    size = int(request.META.get("CONTENT_LENGTH") or 0)
    if size > MLFLOW_MAX_BATCH_BYTES:
        raise InvalidParameterError(
            f"Batched logging API requests must be at most {MLFLOW_MAX_BATCH_BYTES} bytes, got "
            f"a request of size {size}."
        )
    services.run_log_batch(
        run=_run_to_log(fields),
        metrics=fields.get("metrics"),
        params=fields.get("params"),
        tags=fields.get("tags"),
        limits=MLFLOW_LIMITS,
    )
    return {}


def get_metric_history(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    key = required_str(fields, "metric_key")
    run = _run(fields)
    history = selectors.metric_history(run=run, key=key).only(
        "key", "value", "is_nan", "step", "timestamp"
    )
    limit = optional_int(fields, "max_results", minimum=1)
    if limit is None:
        return {"metrics": [metric_json(m) for m in history]}
    return page_body(
        "metrics", history, offset=offset_of(fields.get("page_token")), limit=limit,
        to_json=lambda page: [metric_json(m) for m in page],
    )  # fmt: skip


def _file_infos(entries: list[dict[str, Any]], *, basename: bool) -> list[dict[str, Any]]:
    return [
        {
            "path": entry["path"].rsplit("/", 1)[-1] if basename else entry["path"],
            "is_dir": entry["is_dir"],
            **({} if entry["is_dir"] else {"file_size": entry["size_bytes"]}),
        }
        for entry in entries
    ]


def list_artifacts(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    run = _run(fields)
    entries = selectors.artifact_listing(run=run, folder=fields.get("path") or "")
    return {"root_uri": run.artifact_uri, "files": _file_infos(entries, basename=False)}


def search_logged_models(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    # MLflow 3's client asks for a logged model named like the folder whenever it lists or
    # downloads a run's artifacts. This store has no logged models, so the answer is none
    # (an ENDPOINT_NOT_FOUND here would break list_artifacts).
    string_list(fields, "experiment_ids")
    return {"models": []}


def server_info(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "store_type": "tradingsite",
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "workspaces_enabled": False,
    }


# --- the artifact proxy: <experiment id>/<run id>/artifacts/<path> ------------------------------


def _artifact_target(location: str, *, folder: bool = False) -> tuple[Run, str]:
    """(run, artifact path under it) of `location`; the path is validated before any lookup
    (a file's path strictly; a folder to list may be the run's root or end in "/")."""
    parts = location.split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts" or not parts[0] or not parts[1]:
        raise InvalidParameterError(
            f"artifact location {location!r}: expected <experiment id>/<run id>/artifacts/<path>"
        )
    path = parts[3] if len(parts) == 4 else ""
    path = validation.artifact_folder(path) if folder else validation.artifact_path(path)
    run = selectors.run_get(run_id=parts[1])
    if str(run.experiment_id) != parts[0]:
        raise ResourceDoesNotExistError(
            f"Run with id={parts[1]} not found in experiment {parts[0]}"
        )
    return run, path


@extend_schema(tags=["mlflow"])
class MlflowArtifactListView(MlflowApiView):
    """The files and folders in `path` (<experiment id>/<run id>/artifacts[/<folder>])."""

    @extend_schema(
        operation_id="mlflow_artifacts_list",
        parameters=[s.ArtifactPathRequest],
        responses={200: s.ArtifactListResponse, **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        location = request.query_params.get("path", "")
        if not location:
            return Response({"files": []})  # the proxy's root: we do not list every run
        run, folder = _artifact_target(location, folder=True)
        entries = selectors.artifact_listing(run=run, folder=folder)
        return Response({"files": _file_infos(entries, basename=True)})


@extend_schema(tags=["mlflow"])
class MlflowArtifactView(MlflowApiView):
    """Download (GET), upload (PUT, the raw body) or delete one artifact of a run."""

    parser_classes: list = []  # an upload's body is the file, whatever its content type
    write_permissions = {"PUT": CHANGE_RUN_PERMISSION, "DELETE": CHANGE_RUN_PERMISSION}

    @extend_schema(
        operation_id="mlflow_artifacts_download",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            **_ERRORS,
        },
    )
    def get(self, request: Request, location: str) -> Any:
        run, path = _artifact_target(location)
        return artifact_download(selectors.artifact_get(run=run, path=path))

    @extend_schema(
        operation_id="mlflow_artifacts_upload",
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: s.MlflowEmptySerializer, **_ERRORS},
    )
    def put(self, request: Request, location: str) -> Response:
        run, path = _artifact_target(location)
        services.run_artifact_store(
            run=run, name=path, data=request.stream or b"", content_type=request.content_type
        )
        return Response({})

    @extend_schema(
        operation_id="mlflow_artifacts_delete",
        responses={200: s.MlflowEmptySerializer, **_ERRORS},
    )
    def delete(self, request: Request, location: str) -> Response:
        run, path = _artifact_target(location)
        services.run_artifact_delete(run=run, name=path)
        return Response({})


@extend_schema(exclude=True)
class MlflowEndpointNotFoundView(MlflowApiView):
    """Any other MLflow route: MLflow's ENDPOINT_NOT_FOUND, after authentication."""

    parser_classes: list = []

    def _not_found(self, request: Request, rest: str = "") -> Response:
        return endpoint_not_found(request.path)

    get = post = put = patch = delete = _not_found


# --- the endpoints --------------------------------------------------------------------------------

CreateExperimentView = _endpoint(
    "post", create_experiment, permission=ADD_EXPERIMENT_PERMISSION,
    fields=s.CreateExperimentRequest,
    response=s.ExperimentIdResponse, summary="Create an experiment.",
)  # fmt: skip
SearchExperimentsView = _endpoint(
    "post", search_experiments, permission=None,
    fields=s.SearchExperimentsRequest,
    response=s.SearchExperimentsResponse, summary="Search experiments (filter, order_by, pages).",
)  # fmt: skip
GetExperimentView = _endpoint(
    "get", get_experiment, permission=None,
    fields=s.ExperimentIdRequest,
    response=s.ExperimentResponse, summary="An experiment by id.",
)  # fmt: skip
GetExperimentByNameView = _endpoint(
    "get", get_experiment_by_name, permission=None,
    fields=s.ExperimentNameRequest,
    response=s.ExperimentResponse, summary="An experiment by name.",
)  # fmt: skip
DeleteExperimentView = _endpoint(
    "post", delete_experiment, permission=DELETE_EXPERIMENT_PERMISSION,
    fields=s.ExperimentIdRequest,
    response=s.MlflowEmptySerializer, summary="Soft-delete an experiment and its runs.",
)  # fmt: skip
RestoreExperimentView = _endpoint(
    "post", restore_experiment, permission=DELETE_EXPERIMENT_PERMISSION,
    fields=s.ExperimentIdRequest,
    response=s.MlflowEmptySerializer, summary="Restore a deleted experiment and its runs.",
)  # fmt: skip
UpdateExperimentView = _endpoint(
    "post", update_experiment, permission=CHANGE_EXPERIMENT_PERMISSION,
    fields=s.UpdateExperimentRequest,
    response=s.MlflowEmptySerializer, summary="Rename an experiment.",
)  # fmt: skip
SetExperimentTagView = _endpoint(
    "post", set_experiment_tag, permission=CHANGE_EXPERIMENT_PERMISSION,
    fields=s.SetExperimentTagRequest,
    response=s.MlflowEmptySerializer, summary="Set a tag of an experiment.",
)  # fmt: skip
DeleteExperimentTagView = _endpoint(
    "post", delete_experiment_tag, permission=CHANGE_EXPERIMENT_PERMISSION,
    fields=s.DeleteExperimentTagRequest,
    response=s.MlflowEmptySerializer, summary="Delete a tag of an experiment.",
)  # fmt: skip
CreateRunView = _endpoint(
    "post", create_run, permission=ADD_RUN_PERMISSION,
    fields=s.CreateRunRequest,
    response=s.RunResponse, summary="Start a run.",
)  # fmt: skip
UpdateRunView = _endpoint(
    "post", update_run, permission=CHANGE_RUN_PERMISSION,
    fields=s.UpdateRunRequest,
    response=s.UpdateRunResponse, summary="Set a run's status, end time or name.",
)  # fmt: skip
DeleteRunView = _endpoint(
    "post", delete_run, permission=DELETE_RUN_PERMISSION,
    fields=s.RunIdRequest,
    response=s.MlflowEmptySerializer, summary="Soft-delete a run.",
)  # fmt: skip
RestoreRunView = _endpoint(
    "post", restore_run, permission=DELETE_RUN_PERMISSION,
    fields=s.RunIdRequest,
    response=s.MlflowEmptySerializer, summary="Restore a deleted run.",
)  # fmt: skip
GetRunView = _endpoint(
    "get", get_run, permission=None,
    fields=s.RunIdRequest,
    response=s.RunResponse, summary="A run with its params, latest metrics and tags.",
)  # fmt: skip
SearchRunsView = _endpoint(
    "post", search_runs, permission=None,
    fields=s.SearchRunsRequest,
    response=s.SearchRunsResponse, summary="Search runs (filter, order_by, pages), in SQL.",
)  # fmt: skip
LogMetricView = _endpoint(
    "post", log_metric, permission=CHANGE_RUN_PERMISSION,
    fields=s.LogMetricRequest,
    response=s.MlflowEmptySerializer, summary="Log one metric value.",
)  # fmt: skip
LogParamView = _endpoint(
    "post", log_param, permission=CHANGE_RUN_PERMISSION,
    fields=s.LogParamRequest,
    response=s.MlflowEmptySerializer, summary="Log a param (a different value later is refused).",
)  # fmt: skip
SetTagView = _endpoint(
    "post", set_tag, permission=CHANGE_RUN_PERMISSION,
    fields=s.SetTagRequest,
    response=s.MlflowEmptySerializer, summary="Set a tag of a run.",
)  # fmt: skip
DeleteTagView = _endpoint(
    "post", delete_tag, permission=CHANGE_RUN_PERMISSION,
    fields=s.DeleteTagRequest,
    response=s.MlflowEmptySerializer, summary="Delete a tag of a run.",
)  # fmt: skip
LogBatchView = _endpoint(
    "post", log_batch, permission=CHANGE_RUN_PERMISSION,
    fields=s.LogBatchRequest,
    response=s.MlflowEmptySerializer,
    summary="Log up to 1,000 metrics, 100 params and 100 tags in one transaction.",
)  # fmt: skip
GetMetricHistoryView = _endpoint(
    "get", get_metric_history, permission=None,
    fields=s.MetricHistoryRequest,
    response=s.MetricHistoryResponse, summary="Every logged value of a metric.",
)  # fmt: skip
ListArtifactsView = _endpoint(
    "get", list_artifacts, permission=None,
    fields=s.ListArtifactsRequest,
    response=s.ListArtifactsResponse, summary="A run's artifacts in a folder.",
)  # fmt: skip
SearchLoggedModelsView = _endpoint(
    "post", search_logged_models, permission=None,
    fields=s.SearchLoggedModelsRequest,
    response=s.SearchLoggedModelsResponse,
    summary="Search logged models: always none (logged models are not supported).",
)  # fmt: skip
ServerInfoView = _endpoint(
    "get", server_info, permission=None,
    fields=None,
    response=s.ServerInfoResponse, summary="What this server supports (no multipart uploads).",
)  # fmt: skip
