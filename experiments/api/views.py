"""The native tracking API: experiments, runs, batches, histories, artifacts, comparison.

Views parse the request and call a service or a selector; a TrackingError from either becomes
`{"detail": ..., "code": ...}` with its status (400, 404, 409, 413). Reads need a login; each
write needs the permission its view names in `write_permissions` (the researcher role).
"""

from __future__ import annotations

import posixpath
from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments import selectors, services
from experiments.api.serializers import (
    ArtifactEntrySerializer,
    ArtifactSerializer,
    ExperimentCreateSerializer,
    ExperimentSerializer,
    ExperimentUpdateSerializer,
    LogBatchResultSerializer,
    LogBatchSerializer,
    MetricHistoryPointSerializer,
    RunCompareSerializer,
    RunCreateSerializer,
    RunSerializer,
    RunUpdateSerializer,
    metric_number,
)
from experiments.constants import (
    ADD_EXPERIMENT_PERMISSION,
    ADD_RUN_PERMISSION,
    CHANGE_EXPERIMENT_PERMISSION,
    CHANGE_RUN_PERMISSION,
    DELETE_EXPERIMENT_PERMISSION,
    DELETE_RUN_PERMISSION,
    METRIC_HISTORY_DEFAULT_PAGE,
    METRIC_HISTORY_MAX_PAGE,
    NATIVE_MAX_PAGE_SIZE,
)
from experiments.errors import ResourceDoesNotExistError, TrackingError
from experiments.models import Experiment, Run
from experiments.storage import blob_open
from features.models import FeatureView
from tradingsite.api.parsers import INT64_MAX, BoundedJSONParser
from tradingsite.api.permissions import WritePermissions
from tradingsite.pagination import StrictLimitOffsetPagination

SEARCH_PARAMETERS = [
    OpenApiParameter("filter", str, description="MLflow filter, e.g. metrics.sharpe > 1"),
    OpenApiParameter("order_by", str, many=True, description="e.g. metrics.sharpe DESC"),
    OpenApiParameter("view", str, enum=list(selectors.VIEWS), description="default: active"),
]


class TrackerPagination(StrictLimitOffsetPagination):
    max_limit = NATIVE_MAX_PAGE_SIZE


class HistoryPagination(StrictLimitOffsetPagination):
    default_limit = METRIC_HISTORY_DEFAULT_PAGE
    max_limit = METRIC_HISTORY_MAX_PAGE


class TrackingErrorsMixin:
    """Service errors -> `{"detail", "code"}` with the error's status. Writes need the permission
    the view names for the method in `write_permissions` (none named: every write refused)."""

    permission_classes = [IsAuthenticated, WritePermissions]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, TrackingError):
            return Response(
                {"detail": exc.message, "code": exc.error_code.lower()}, status=exc.native_status
            )
        return super().handle_exception(exc)  # type: ignore[misc]


def _feature_view(ref: dict[str, Any] | None) -> FeatureView | None:
    if ref is None:
        return None
    view = FeatureView.objects.filter(name=ref["name"], version=ref["version"]).first()
    if view is None:
        raise ResourceDoesNotExistError(f"no feature view {ref['name']} v{ref['version']}")
    return view


def _run_with_details(run: Run) -> Run:
    run = Run.objects.select_related("parent", "created_by", "feature_view").get(pk=run.pk)
    return selectors.runs_with_details([run])[0]


# --- experiments ----------------------------------------------------------------------------------


class ExperimentListView(TrackingErrorsMixin, GenericAPIView):
    """Search experiments (MLflow filter on name, tags, creation_time; order_by), or create one."""

    serializer_class = ExperimentSerializer
    pagination_class = TrackerPagination
    write_permissions = {"POST": ADD_EXPERIMENT_PERMISSION}
    # JSON bodies only: a form cannot carry `tags` (an object), and the schema then names the
    # one encoding that can (a multipart body that is not a form read as an empty one)
    parser_classes = [BoundedJSONParser]

    def get_queryset(self) -> QuerySet[Experiment]:
        if getattr(self, "swagger_fake_view", False):
            return Experiment.objects.none()
        params = self.request.query_params
        return selectors.experiment_search(
            filter_string=params.get("filter", ""),
            order_by=params.getlist("order_by"),
            view=params.get("view", "active"),
        ).prefetch_related("tags")

    # many=True: a list, so the schema shows the page ({count, next, previous, results}) and
    # limit/offset (a GenericAPIView's own get() is taken for a detail view otherwise)
    @extend_schema(
        operation_id="experiments_list",
        parameters=SEARCH_PARAMETERS,
        responses=ExperimentSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ExperimentSerializer(page, many=True).data)

    @extend_schema(request=ExperimentCreateSerializer, responses={201: ExperimentSerializer})
    def post(self, request: Request) -> Response:
        body = ExperimentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        experiment = services.experiment_create(**body.validated_data)
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentDetailView(TrackingErrorsMixin, APIView):
    """One experiment; PATCH renames or describes it, DELETE soft-deletes it and its runs."""

    write_permissions = {
        "PATCH": CHANGE_EXPERIMENT_PERMISSION,
        "DELETE": DELETE_EXPERIMENT_PERMISSION,
    }

    @extend_schema(responses=ExperimentSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ExperimentSerializer(selectors.experiment_get(experiment_id=pk)).data)

    @extend_schema(request=ExperimentUpdateSerializer, responses=ExperimentSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        body = ExperimentUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        experiment = services.experiment_update(
            experiment=selectors.experiment_get(experiment_id=pk), **body.validated_data
        )
        return Response(ExperimentSerializer(experiment).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.experiment_delete(experiment=selectors.experiment_get(experiment_id=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- runs -----------------------------------------------------------------------------------------


class RunListView(TrackingErrorsMixin, GenericAPIView):
    """Search runs, answered in SQL (filters on metrics, params, tags, attributes; order_by;
    limit/offset), or create a run."""

    serializer_class = RunSerializer
    pagination_class = TrackerPagination
    # experiment_name creates the experiment when absent: creating runs includes that
    write_permissions = {"POST": ADD_RUN_PERMISSION}
    parser_classes = [BoundedJSONParser]  # tags, feature_view, training_set: see experiments

    def get_queryset(self) -> QuerySet[Run]:
        if getattr(self, "swagger_fake_view", False):
            return Run.objects.none()
        params = self.request.query_params
        ids = params.getlist("experiment_id")
        try:
            experiment_ids = [int(i) for i in ids] if ids else None
        except ValueError:
            raise ValidationError({"experiment_id": "integers are required"}) from None
        if experiment_ids and not all(0 <= i <= INT64_MAX for i in experiment_ids):
            # past 64 bits the database cannot compare the number (SQLite: a 500)
            raise ValidationError({"experiment_id": f"ids are 0 to {INT64_MAX}"})
        return selectors.run_search(
            experiment_ids=experiment_ids,
            filter_string=params.get("filter", ""),
            order_by=params.getlist("order_by"),
            view=params.get("view", "active"),
            status=params.get("status"),
        ).select_related("parent", "created_by", "feature_view")

    @extend_schema(
        operation_id="runs_list",
        parameters=[
            OpenApiParameter("experiment_id", int, many=True, description="default: all"),
            OpenApiParameter("status", str, enum=Run.Status.values),
            *SEARCH_PARAMETERS,
        ],
        responses=RunSerializer(many=True),  # a page, as for experiments
    )
    def get(self, request: Request) -> Response:
        page = selectors.runs_with_details(self.paginate_queryset(self.get_queryset()))
        return self.get_paginated_response(RunSerializer(page, many=True).data)

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer})
    def post(self, request: Request) -> Response:
        body = RunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "experiment_id" in data:
            experiment = selectors.experiment_get(experiment_id=data["experiment_id"])
        else:
            experiment = services.experiment_get_or_create(name=data["experiment_name"])
        parent = (
            selectors.run_get(run_id=data["parent_run_id"]) if "parent_run_id" in data else None
        )
        run = services.run_create(
            experiment=experiment,
            name=data.get("name", ""),
            user=request.user,
            source=data.get("source", ""),
            tags=data.get("tags"),
            parent=parent,
            start_time_ms=data.get("start_time"),
            feature_view=_feature_view(data.get("feature_view")),
            training_set=data.get("training_set"),
        )
        return Response(RunSerializer(_run_with_details(run)).data, status=status.HTTP_201_CREATED)


class RunDetailView(TrackingErrorsMixin, APIView):
    """One run with its params, latest metrics and tags; PATCH ends, renames or links it to a
    feature view version; DELETE soft-deletes it."""

    write_permissions = {"PATCH": CHANGE_RUN_PERMISSION, "DELETE": DELETE_RUN_PERMISSION}
    # JSON bodies only (feature_view is an object): a malformed multipart body was read as an
    # empty form, so a PATCH of garbage answered 200 (tests/security/test_schemathesis.py)
    parser_classes = [BoundedJSONParser]

    @extend_schema(responses=RunSerializer)
    def get(self, request: Request, run_id: str) -> Response:
        return Response(RunSerializer(_run_with_details(selectors.run_get(run_id=run_id))).data)

    @extend_schema(request=RunUpdateSerializer, responses=RunSerializer)
    def patch(self, request: Request, run_id: str) -> Response:
        body = RunUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run = selectors.run_get(run_id=run_id)
        if "feature_view" in data or "training_set" in data:
            view = _feature_view(data.get("feature_view")) or run.feature_view
            if view is None:
                raise ValidationError({"feature_view": "a training set needs its feature view"})
            training_set = data.get("training_set")
            if training_set is None:  # a new view for the same definition
                training_set = {**(run.training_set or {}), "view": view.name}
                training_set["version"] = view.version
            services.run_link_feature_view(run=run, feature_view=view, training_set=training_set)
        services.run_update(
            run=run,
            status=data.get("status"),
            end_time_ms=data.get("end_time"),
            name=data.get("name"),
        )
        return Response(RunSerializer(_run_with_details(run)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, run_id: str) -> Response:
        services.run_delete(run=selectors.run_get(run_id=run_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RunLogBatchView(TrackingErrorsMixin, APIView):
    """Log params, metric points and tags in one transaction (up to 10,000 points): all or none.
    A changed param value, a non-numeric metric or an oversized batch is a 400 naming it."""

    write_permissions = {"POST": CHANGE_RUN_PERMISSION}

    @extend_schema(request=LogBatchSerializer, responses=LogBatchResultSerializer)
    def post(self, request: Request, run_id: str) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise ValidationError({"detail": "a JSON object is required"})
        counts = services.run_log_batch(
            run=selectors.run_for_logging(run_id=run_id),
            params=body.get("params"),
            metrics=body.get("metrics"),
            tags=body.get("tags"),
            step=body.get("step", 0),
            timestamp_ms=body.get("timestamp"),
        )
        return Response(counts)


class RunMetricHistoryView(TrackingErrorsMixin, GenericAPIView):
    """Every logged value of one metric (?key=), by step; limit/offset pages."""

    pagination_class = HistoryPagination
    serializer_class = MetricHistoryPointSerializer

    @extend_schema(
        parameters=[OpenApiParameter("key", str, required=True)],
        responses=MetricHistoryPointSerializer(many=True),  # a page, as for experiments
    )
    def get(self, request: Request, run_id: str) -> Response:
        key = request.query_params.get("key")
        if not key:
            raise ValidationError({"key": "the metric's key is required"})
        history = selectors.metric_history(run=selectors.run_get(run_id=run_id), key=key)
        page = self.paginate_queryset(history.values_list("step", "value", "is_nan", "timestamp"))
        points = [
            {"step": step, "value": metric_number(value, is_nan), "timestamp": stamp}
            for step, value, is_nan, stamp in page
        ]
        return self.get_paginated_response(points)


class RunArtifactListView(TrackingErrorsMixin, APIView):
    """The files and folders directly in a folder of the run's artifacts (?path=, default root)."""

    @extend_schema(
        parameters=[OpenApiParameter("path", str)],
        responses=ArtifactEntrySerializer(many=True),
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = selectors.run_get(run_id=run_id)
        return Response(
            selectors.artifact_listing(run=run, folder=request.query_params.get("path", ""))
        )


def artifact_download(artifact: Any) -> FileResponse:
    """An artifact as an attachment, never rendered: no sniffing, a sandbox if opened anyway."""
    try:
        blob = blob_open(artifact.sha256)
    except FileNotFoundError:
        raise ResourceDoesNotExistError(
            f"the content of artifact {artifact.path!r} is missing from the artifact store"
        ) from None
    response = FileResponse(
        blob,
        as_attachment=True,
        filename=posixpath.basename(artifact.path),
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Artifact-Sha256"] = artifact.sha256
    return response


class RunArtifactView(TrackingErrorsMixin, APIView):
    """PUT the request body as the artifact `path` (sha256 computed on the server; a bad path
    is refused before a byte is stored); GET it back as an attachment."""

    write_permissions = {"PUT": CHANGE_RUN_PERMISSION}

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            404: OpenApiResponse(description="no such run or artifact"),
        }
    )
    def get(self, request: Request, run_id: str, path: str) -> FileResponse:
        artifact = selectors.artifact_get(run=selectors.run_get(run_id=run_id), path=path)
        return artifact_download(artifact)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={201: ArtifactSerializer},
    )
    def put(self, request: Request, run_id: str, path: str) -> Response:
        run = selectors.run_get(run_id=run_id)
        artifact = services.run_artifact_store(
            run=run,
            name=path,
            data=request.stream or b"",
            content_type=request.content_type,
        )
        return Response(ArtifactSerializer(artifact).data, status=status.HTTP_201_CREATED)


class RunCompareView(TrackingErrorsMixin, APIView):
    """Runs side by side (?run_id=a&run_id=b): params, final metrics, and metric histories
    aligned by step (?history=loss to pick metrics; default all)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("run_id", str, many=True, required=True),
            OpenApiParameter("history", str, many=True),
        ],
        responses=RunCompareSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(
            selectors.run_compare(
                run_ids=request.query_params.getlist("run_id"),
                history_keys=request.query_params.getlist("history"),
            )
        )
