"""OpenAPI shapes of the MLflow endpoints (mlflow/protos/service.proto), for the schema only:
requests are read by experiments.mlflow_compat.protocol, which follows the protobuf JSON rules
(int64 as numbers or strings, doubles as numbers or "NaN"), and DRF serializers would not."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiments.models import Run

_DOUBLE = {
    "oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]
}


@extend_schema_field(_DOUBLE)
class DoubleField(serializers.Field):
    """A protobuf JSON double: a number, or "NaN" / "Infinity" / "-Infinity"."""


class MlflowErrorSerializer(serializers.Serializer):
    error_code = serializers.CharField(help_text="e.g. RESOURCE_DOES_NOT_EXIST")
    message = serializers.CharField()


class MlflowEmptySerializer(serializers.Serializer):
    pass


class MlflowKeyValueSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField(allow_blank=True)


class MlflowExperimentSerializer(serializers.Serializer):
    experiment_id = serializers.CharField()
    name = serializers.CharField()
    artifact_location = serializers.CharField()
    lifecycle_stage = serializers.ChoiceField(choices=["active", "deleted"])
    last_update_time = serializers.IntegerField()
    creation_time = serializers.IntegerField()
    tags = MlflowKeyValueSerializer(many=True)


class MlflowMetricSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = DoubleField()
    timestamp = serializers.IntegerField()
    step = serializers.IntegerField(required=False)


class MlflowRunInfoSerializer(serializers.Serializer):
    run_id = serializers.CharField()
    run_uuid = serializers.CharField()
    run_name = serializers.CharField()
    experiment_id = serializers.CharField()
    user_id = serializers.CharField()
    status = serializers.ChoiceField(choices=Run.Status.choices)
    start_time = serializers.IntegerField()
    end_time = serializers.IntegerField(required=False)
    artifact_uri = serializers.CharField()
    lifecycle_stage = serializers.ChoiceField(choices=["active", "deleted"])


class MlflowRunDataSerializer(serializers.Serializer):
    metrics = MlflowMetricSerializer(many=True)
    params = MlflowKeyValueSerializer(many=True)
    tags = MlflowKeyValueSerializer(many=True)


class MlflowRunSerializer(serializers.Serializer):
    info = MlflowRunInfoSerializer()
    data = MlflowRunDataSerializer()
    inputs = serializers.DictField()
    outputs = serializers.DictField()


# --- requests -------------------------------------------------------------------------------------


class CreateExperimentRequest(serializers.Serializer):
    name = serializers.CharField()
    artifact_location = serializers.CharField(required=False, help_text="must be empty")
    tags = MlflowKeyValueSerializer(many=True, required=False)


class SearchExperimentsRequest(serializers.Serializer):
    max_results = serializers.IntegerField(required=False)
    page_token = serializers.CharField(required=False)
    filter = serializers.CharField(required=False)
    order_by = serializers.ListField(child=serializers.CharField(), required=False)
    view_type = serializers.ChoiceField(
        choices=["ACTIVE_ONLY", "DELETED_ONLY", "ALL"], required=False
    )


class ExperimentIdRequest(serializers.Serializer):
    experiment_id = serializers.CharField()


class ExperimentNameRequest(serializers.Serializer):
    experiment_name = serializers.CharField()


class UpdateExperimentRequest(serializers.Serializer):
    experiment_id = serializers.CharField()
    new_name = serializers.CharField()


class SetExperimentTagRequest(serializers.Serializer):
    experiment_id = serializers.CharField()
    key = serializers.CharField()
    value = serializers.CharField(allow_blank=True)


class DeleteExperimentTagRequest(serializers.Serializer):
    experiment_id = serializers.CharField()
    key = serializers.CharField()


class RunIdRequest(serializers.Serializer):
    run_id = serializers.CharField()
    run_uuid = serializers.CharField(required=False, help_text="deprecated alias of run_id")


class CreateRunRequest(serializers.Serializer):
    experiment_id = serializers.CharField()
    user_id = serializers.CharField(required=False)
    run_name = serializers.CharField(required=False)
    start_time = serializers.IntegerField(required=False)
    tags = MlflowKeyValueSerializer(many=True, required=False)


class UpdateRunRequest(RunIdRequest):
    status = serializers.ChoiceField(choices=Run.Status.choices, required=False)
    end_time = serializers.IntegerField(required=False)
    run_name = serializers.CharField(required=False)


class SearchRunsRequest(serializers.Serializer):
    experiment_ids = serializers.ListField(child=serializers.CharField(), required=False)
    filter = serializers.CharField(required=False)
    run_view_type = serializers.ChoiceField(
        choices=["ACTIVE_ONLY", "DELETED_ONLY", "ALL"], required=False
    )
    max_results = serializers.IntegerField(required=False)
    order_by = serializers.ListField(child=serializers.CharField(), required=False)
    page_token = serializers.CharField(required=False)


class LogMetricRequest(RunIdRequest):
    key = serializers.CharField()
    value = DoubleField()
    timestamp = serializers.IntegerField(required=False)
    step = serializers.IntegerField(required=False)
    model_id = serializers.CharField(required=False, help_text="accepted, not stored")
    dataset_name = serializers.CharField(required=False, help_text="accepted, not stored")
    dataset_digest = serializers.CharField(required=False, help_text="accepted, not stored")


class LogParamRequest(RunIdRequest):
    key = serializers.CharField()
    value = serializers.CharField(allow_blank=True)


class SetTagRequest(LogParamRequest):
    pass


class DeleteTagRequest(RunIdRequest):
    key = serializers.CharField()


class LogBatchRequest(RunIdRequest):
    metrics = MlflowMetricSerializer(many=True, required=False)
    params = MlflowKeyValueSerializer(many=True, required=False)
    tags = MlflowKeyValueSerializer(many=True, required=False)


class MetricHistoryRequest(RunIdRequest):
    metric_key = serializers.CharField()
    max_results = serializers.IntegerField(required=False)
    page_token = serializers.CharField(required=False)


class ListArtifactsRequest(RunIdRequest):
    path = serializers.CharField(required=False)
    page_token = serializers.CharField(required=False)


class SearchLoggedModelsRequest(serializers.Serializer):
    experiment_ids = serializers.ListField(child=serializers.CharField(), required=False)
    filter = serializers.CharField(required=False)
    max_results = serializers.IntegerField(required=False)
    page_token = serializers.CharField(required=False)


class ArtifactPathRequest(serializers.Serializer):
    path = serializers.CharField(
        required=False, help_text="<experiment id>/<run id>/artifacts[/<folder>]"
    )


# --- responses ------------------------------------------------------------------------------------


class ExperimentIdResponse(serializers.Serializer):
    experiment_id = serializers.CharField()


class ExperimentResponse(serializers.Serializer):
    experiment = MlflowExperimentSerializer()


class SearchExperimentsResponse(serializers.Serializer):
    experiments = MlflowExperimentSerializer(many=True)
    next_page_token = serializers.CharField(required=False)


class RunResponse(serializers.Serializer):
    run = MlflowRunSerializer()


class UpdateRunResponse(serializers.Serializer):
    run_info = MlflowRunInfoSerializer()


class SearchRunsResponse(serializers.Serializer):
    runs = MlflowRunSerializer(many=True)
    next_page_token = serializers.CharField(required=False)


class MetricHistoryResponse(serializers.Serializer):
    metrics = MlflowMetricSerializer(many=True)
    next_page_token = serializers.CharField(required=False)


class FileInfoSerializer(serializers.Serializer):
    path = serializers.CharField()
    is_dir = serializers.BooleanField()
    file_size = serializers.IntegerField(required=False)


class ListArtifactsResponse(serializers.Serializer):
    root_uri = serializers.CharField()
    files = FileInfoSerializer(many=True)


class ArtifactListResponse(serializers.Serializer):
    files = FileInfoSerializer(many=True)


class SearchLoggedModelsResponse(serializers.Serializer):
    models = serializers.ListField(child=serializers.DictField(), help_text="always empty")
    next_page_token = serializers.CharField(required=False)


class ServerInfoResponse(serializers.Serializer):
    store_type = serializers.CharField()
    multipart_uploads_enabled = serializers.BooleanField()
    multipart_downloads_enabled = serializers.BooleanField()
    workspaces_enabled = serializers.BooleanField()
