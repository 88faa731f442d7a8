"""Feature definitions and views: list, detail, materialize, online lookup, point-in-time."""

from __future__ import annotations

import pandas as pd
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from features.constants import MATERIALIZE_PERMISSION
from features.models import FeatureDefinition, FeatureView, MaterializationJob
from features.store import (
    FeatureStoreError,
    feature_view_get,
    feature_view_resolve,
    materialization_job_create,
    online_features_resilient,
    training_set_build,
)
from tradingsite.api.permissions import WritePermissions

MAX_ENTITY_ROWS = 100_000
MAX_ONLINE_SYMBOLS = 500


class FeatureDefinitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = FeatureDefinition
        fields = ["name", "description", "dtype", "params", "warmup_bars", "valid_min", "valid_max"]


class MaterializationJobSerializer(serializers.ModelSerializer):
    view = serializers.CharField(source="view.name")
    version = serializers.IntegerField(source="view.version")
    progress_pct = serializers.FloatField()

    class Meta:
        model = MaterializationJob
        fields = [
            "id", "view", "version", "mode", "status", "symbols", "symbols_done", "progress_pct",
            "rows_written", "quality", "error", "created_at", "started_at", "finished_at",
        ]  # fmt: skip


class FeatureViewSerializer(serializers.ModelSerializer):
    latest_quality = serializers.SerializerMethodField()

    class Meta:
        model = FeatureView
        fields = [
            "name", "version", "description", "entity", "timeframe", "ttl_seconds",
            "feature_names", "definition_hash", "watermark", "created_at", "latest_quality",
        ]  # fmt: skip

    def get_latest_quality(self, view: FeatureView) -> dict | None:
        job = view.jobs.filter(status=MaterializationJob.Status.SUCCEEDED).first()
        return None if job is None else job.quality


def _view(name: str, version: str | int | None = None, *, cached: bool = False) -> FeatureView:
    """The view by name (latest) or ?version=; `cached` for definition-only reads."""
    if version in (None, ""):
        number = None
    elif str(version).isdigit() and int(version) > 0:
        number = int(version)
    else:
        raise ValidationError({"version": "must be a positive integer"})
    try:
        return (feature_view_resolve if cached else feature_view_get)(name, number)
    except FeatureView.DoesNotExist as exc:
        raise NotFound(str(exc)) from exc


class FeatureListView(ListAPIView):
    """Every feature definition the store can compute."""

    queryset = FeatureDefinition.objects.all()
    serializer_class = FeatureDefinitionSerializer


class FeatureViewListView(ListAPIView):
    """The latest version of every feature view."""

    serializer_class = FeatureViewSerializer

    def get_queryset(self):  # noqa: ANN201
        latest = FeatureView.objects.order_by("name", "-version").distinct()
        ids = {}
        for view in latest.only("id", "name", "version"):
            ids.setdefault(view.name, view.pk)
        return FeatureView.objects.filter(pk__in=ids.values()).order_by("name")


class FeatureViewDetailView(APIView):
    """A view's definition (latest, or ?version=N), all its versions and recent jobs."""

    @extend_schema(
        parameters=[OpenApiParameter("version", int, required=False)],
        responses=FeatureViewSerializer,
    )
    def get(self, request: Request, name: str) -> Response:
        view = _view(name, request.query_params.get("version"))
        body = FeatureViewSerializer(view).data
        body["versions"] = list(
            FeatureView.objects.filter(name=name)
            .order_by("version")
            .values("version", "definition_hash", "created_at", "watermark")
        )
        body["jobs"] = MaterializationJobSerializer(view.jobs.all()[:10], many=True).data
        return Response(body)


class MaterializeInputSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=MaterializationJob.Mode.choices, default="incremental")
    symbols = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    version = serializers.IntegerField(min_value=1, required=False)


class FeatureViewMaterializeView(APIView):
    """Start a materialization job (202); follow it at /api/v1/materialization-jobs/{id}.
    Needs features.materialize_featureview (the data engineer role)."""

    permission_classes = [IsAuthenticated, WritePermissions]
    write_permissions = {"POST": MATERIALIZE_PERMISSION}

    @extend_schema(
        request=MaterializeInputSerializer, responses={202: MaterializationJobSerializer}
    )
    def post(self, request: Request, name: str) -> Response:
        from features.tasks import feature_view_materialize_task

        body = MaterializeInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        view = _view(name, data.get("version"))
        try:
            with transaction.atomic():
                job = materialization_job_create(
                    view=view, mode=data["mode"], symbols=data.get("symbols")
                )
                transaction.on_commit(lambda: feature_view_materialize_task.delay(job.pk))
        except FeatureStoreError as exc:
            raise ValidationError({"symbols": str(exc)}) from exc
        return Response(MaterializationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class MaterializationJobDetailView(APIView):
    @extend_schema(responses=MaterializationJobSerializer)
    def get(self, request: Request, pk: int) -> Response:
        job = get_object_or_404(MaterializationJob.objects.select_related("view"), pk=pk)
        return Response(MaterializationJobSerializer(job).data)


class OnlineResultSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    ts = serializers.DateTimeField(allow_null=True)
    values = serializers.DictField(child=serializers.FloatField(allow_null=True), allow_null=True)
    stale = serializers.BooleanField()


class OnlineOutputSerializer(serializers.Serializer):
    view = serializers.CharField()
    version = serializers.IntegerField()
    results = OnlineResultSerializer(many=True)


class HistoricalOutputSerializer(serializers.Serializer):
    view = serializers.CharField()
    version = serializers.IntegerField()
    rows = serializers.ListField(child=serializers.DictField())


class FeatureViewOnlineView(APIView):
    """Latest feature values per symbol, with the bar time and a staleness flag."""

    @extend_schema(
        parameters=[
            OpenApiParameter("symbols", str, required=True),
            OpenApiParameter("version", int, required=False),
        ],
        responses=OnlineOutputSerializer,
    )
    def get(self, request: Request, name: str) -> Response:
        symbols = [s for s in request.query_params.get("symbols", "").split(",") if s]
        if not symbols or len(symbols) > MAX_ONLINE_SYMBOLS:
            raise ValidationError(
                {"symbols": f"give 1 to {MAX_ONLINE_SYMBOLS} symbols, comma separated"}
            )
        view = _view(name, request.query_params.get("version"), cached=True)
        results = online_features_resilient(view=view, symbols=symbols)
        return Response({"view": view.name, "version": view.version, "results": results})


class EntityRowSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=32)
    ts = serializers.DateTimeField()
    label = serializers.FloatField(required=False, allow_null=True)


class HistoricalInputSerializer(serializers.Serializer):
    entities = EntityRowSerializer(many=True, allow_empty=False, max_length=MAX_ENTITY_ROWS)
    version = serializers.IntegerField(min_value=1, required=False)


class FeatureViewHistoricalView(APIView):
    """Point-in-time training set: per entity row the newest features closed at or before ts."""

    @extend_schema(request=HistoricalInputSerializer, responses=HistoricalOutputSerializer)
    def post(self, request: Request, name: str) -> Response:
        body = HistoricalInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        view = _view(name, body.validated_data.get("version"))
        entities = pd.DataFrame(body.validated_data["entities"])
        frame = training_set_build(view=view, entities=entities)
        frame["ts"] = frame["ts"].map(lambda t: t.isoformat())
        frame["feature_ts"] = frame["feature_ts"].map(
            lambda t: None if pd.isna(t) else t.isoformat()
        )
        rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return Response({"view": view.name, "version": view.version, "rows": rows})
