"""Shapes of the native tracking API (/api/v1/experiments/, /api/v1/runs/...).

Output serializers read prefetched rows (selectors.runs_with_details). Input serializers check
the envelope; values are checked by the services, which the MLflow API shares. The batch body
is parsed by the service directly: DRF serializers cost ~0.1 ms per nested item, which is a
second for a 10,000-point batch. Its serializer here documents the shape for the schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiments.constants import (
    MAX_EXPERIMENT_NAME_LENGTH,
    MAX_RUN_NAME_LENGTH,
    MAX_SOURCE_LENGTH,
)
from experiments.models import Experiment, Run
from tradingsite.api.fields import StringField


def metric_number(value: float, is_nan: bool) -> float | None:
    """NaN as null: JSON has no NaN (MLflow's API says "NaN"; ours keeps numbers numbers)."""
    return None if is_nan else value


class ExperimentSerializer(serializers.ModelSerializer):
    artifact_location = StringField(source="effective_artifact_location")
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = [
            "id", "name", "description", "artifact_location", "lifecycle", "tags", "created_at",
            "updated_at",
        ]  # fmt: skip

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_tags(self, experiment: Experiment) -> dict[str, str]:
        return {tag.key: tag.value for tag in experiment.tags.all()}


class ExperimentCreateSerializer(serializers.Serializer):
    name = StringField(max_length=MAX_EXPERIMENT_NAME_LENGTH)
    description = StringField(required=False, allow_blank=True, default="")
    tags = serializers.DictField(child=StringField(allow_blank=True), required=False)


class ExperimentUpdateSerializer(serializers.Serializer):
    name = StringField(max_length=MAX_EXPERIMENT_NAME_LENGTH, required=False)
    description = StringField(required=False, allow_blank=True)


class LatestMetricSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="null for NaN")
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField(help_text="epoch milliseconds")


class FeatureViewRefSerializer(serializers.Serializer):
    name = StringField(max_length=100)
    version = serializers.IntegerField(min_value=1)


class RunSerializer(serializers.ModelSerializer):
    run_id = StringField(source="run_uuid")
    created_by = serializers.SerializerMethodField()
    parent_run_id = serializers.SerializerMethodField()
    artifact_uri = StringField()
    params = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    feature_view = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "run_id", "experiment_id", "name", "status", "lifecycle", "start_time", "end_time",
            "user_name", "created_by", "source", "parent_run_id", "artifact_uri", "params",
            "metrics", "tags", "feature_view", "training_set",
        ]  # fmt: skip

    def get_created_by(self, run: Run) -> str | None:
        return None if run.created_by is None else run.created_by.get_username()

    def get_parent_run_id(self, run: Run) -> str | None:
        return None if run.parent is None else run.parent.run_uuid

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_params(self, run: Run) -> dict[str, str]:
        return dict(run.details.params)

    @extend_schema_field(serializers.DictField(child=LatestMetricSerializer()))
    def get_metrics(self, run: Run) -> dict[str, dict[str, Any]]:
        return {
            key: {"value": metric_number(value, is_nan), "step": step, "timestamp": stamp}
            for key, value, is_nan, step, stamp in run.details.metrics
        }

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_tags(self, run: Run) -> dict[str, str]:
        return dict(run.details.tags)

    @extend_schema_field(FeatureViewRefSerializer(allow_null=True))
    def get_feature_view(self, run: Run) -> dict[str, Any] | None:
        view = run.feature_view
        return None if view is None else {"name": view.name, "version": view.version}


class RunCreateSerializer(serializers.Serializer):
    experiment_id = serializers.IntegerField(required=False, help_text="or experiment_name")
    experiment_name = StringField(
        max_length=MAX_EXPERIMENT_NAME_LENGTH,
        required=False,
        help_text="created if it does not exist",
    )
    name = StringField(max_length=MAX_RUN_NAME_LENGTH, required=False, allow_blank=True)
    source = StringField(max_length=MAX_SOURCE_LENGTH, required=False, allow_blank=True)
    parent_run_id = StringField(max_length=32, required=False)
    start_time = serializers.IntegerField(min_value=0, required=False, help_text="epoch ms")
    tags = serializers.DictField(child=StringField(allow_blank=True), required=False)
    feature_view = FeatureViewRefSerializer(required=False)
    training_set = serializers.JSONField(
        required=False,
        help_text='{"view", "version", "symbols", "window", "label"}: how the set was built',
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if ("experiment_id" in data) == ("experiment_name" in data):
            raise serializers.ValidationError("give experiment_id or experiment_name (one)")
        return data


class RunUpdateSerializer(serializers.Serializer):
    name = StringField(max_length=MAX_RUN_NAME_LENGTH, required=False)
    status = serializers.ChoiceField(choices=Run.Status.choices, required=False)
    end_time = serializers.IntegerField(min_value=0, required=False, help_text="epoch ms")
    feature_view = FeatureViewRefSerializer(required=False)
    training_set = serializers.JSONField(required=False)


class MetricPointSerializer(serializers.Serializer):
    key = StringField()
    value = serializers.JSONField(help_text='a number, or "NaN" / "Infinity" / "-Infinity"')
    step = serializers.IntegerField(required=False, help_text="default: the batch's step")
    timestamp = serializers.IntegerField(required=False, help_text="epoch ms; default: now")


class LogBatchSerializer(serializers.Serializer):
    """Documents the body only; services.run_log_batch parses it (see the module docstring)."""

    params = serializers.DictField(child=StringField(), required=False)
    metrics = MetricPointSerializer(many=True, required=False)
    tags = serializers.DictField(child=StringField(), required=False)
    step = serializers.IntegerField(required=False, default=0)


class LogBatchResultSerializer(serializers.Serializer):
    params = serializers.IntegerField()
    metrics = serializers.IntegerField()
    tags = serializers.IntegerField()


class MetricHistoryPointSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    value = serializers.FloatField(allow_null=True, help_text="null for NaN")
    timestamp = serializers.IntegerField()


class ArtifactSerializer(serializers.Serializer):
    path = StringField()
    sha256 = StringField()
    size_bytes = serializers.IntegerField()
    content_type = StringField()
    created_at = serializers.DateTimeField()


class ArtifactEntrySerializer(serializers.Serializer):
    path = StringField()
    is_dir = serializers.BooleanField()
    size_bytes = serializers.IntegerField(required=False)
    sha256 = StringField(required=False)


class CompareRunSerializer(serializers.Serializer):
    run_id = StringField()
    name = StringField()
    experiment_id = serializers.IntegerField()
    status = StringField()
    start_time = serializers.IntegerField()
    end_time = serializers.IntegerField(allow_null=True)


class AlignedStepSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    values = serializers.DictField(
        child=serializers.FloatField(allow_null=True), help_text="run id -> value at this step"
    )


class RunCompareSerializer(serializers.Serializer):
    runs = CompareRunSerializer(many=True)
    params = serializers.DictField(
        child=serializers.DictField(child=StringField()),
        help_text="param key -> run id -> value",
    )
    metrics = serializers.DictField(
        child=serializers.DictField(child=LatestMetricSerializer()),
        help_text="metric key -> run id -> final value",
    )
    histories = serializers.DictField(
        child=AlignedStepSerializer(many=True), help_text="metric key -> steps"
    )
