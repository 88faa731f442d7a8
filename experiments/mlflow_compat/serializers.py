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
    page_token = serializers.CharField(required=False, allow_blank=True)
    filter = serializers.CharField(required=False, allow_blank=True)
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
    filter = serializers.CharField(required=False, allow_blank=True)
    run_view_type = serializers.ChoiceField(
        choices=["ACTIVE_ONLY", "DELETED_ONLY", "ALL"], required=False
    )
    max_results = serializers.IntegerField(required=False)
    order_by = serializers.ListField(child=serializers.CharField(), required=False)
    page_token = serializers.CharField(required=False, allow_blank=True)


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
    page_token = serializers.CharField(required=False, allow_blank=True)


class ListArtifactsRequest(RunIdRequest):
    path = serializers.CharField(required=False, allow_blank=True)
    page_token = serializers.CharField(required=False, allow_blank=True)


class SearchLoggedModelsRequest(serializers.Serializer):
    experiment_ids = serializers.ListField(child=serializers.CharField(), required=False)
    filter = serializers.CharField(required=False, allow_blank=True)
    max_results = serializers.IntegerField(required=False)
    page_token = serializers.CharField(required=False, allow_blank=True)


class ArtifactPathRequest(serializers.Serializer):
    path = serializers.CharField(
        required=False, allow_blank=True, help_text="<experiment id>/<run id>/artifacts[/<folder>]"
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


# --- the model registry (mlflow/protos/model_registry.proto) ------------------------------------

_STAGE_HELP = "None, Staging, Production or Archived (any letter case)"


class MlflowAliasSerializer(serializers.Serializer):
    alias = serializers.CharField()
    version = serializers.CharField()


class MlflowModelVersionSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField(help_text="the version number, as a string")
    creation_timestamp = serializers.IntegerField()
    last_updated_timestamp = serializers.IntegerField(help_text="creation or last stage change")
    user_id = serializers.CharField(allow_blank=True)
    current_stage = serializers.CharField(help_text=_STAGE_HELP)
    description = serializers.CharField(allow_blank=True)
    source = serializers.CharField(allow_blank=True)
    run_id = serializers.CharField(allow_blank=True)
    status = serializers.CharField(help_text="READY: versions are ready at once")
    tags = MlflowKeyValueSerializer(many=True)
    run_link = serializers.CharField(allow_blank=True)
    aliases = serializers.ListField(child=serializers.CharField())


class MlflowRegisteredModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    creation_timestamp = serializers.IntegerField()
    last_updated_timestamp = serializers.IntegerField()
    user_id = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    latest_versions = MlflowModelVersionSerializer(
        many=True, help_text="the newest version in each stage"
    )
    tags = MlflowKeyValueSerializer(many=True)
    aliases = MlflowAliasSerializer(many=True)


class RegisteredModelNameRequest(serializers.Serializer):
    name = serializers.CharField()


class CreateRegisteredModelRequest(RegisteredModelNameRequest):
    tags = MlflowKeyValueSerializer(many=True, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class UpdateDescriptionRequest(RegisteredModelNameRequest):
    description = serializers.CharField(required=False, allow_blank=True)


class SearchRegistryRequest(serializers.Serializer):
    filter = serializers.CharField(
        required=False, allow_blank=True, help_text="e.g. name = 'x', tags.k = 'v'"
    )
    max_results = serializers.IntegerField(required=False)
    order_by = serializers.ListField(child=serializers.CharField(), required=False)
    page_token = serializers.CharField(required=False, allow_blank=True)


class GetLatestVersionsRequest(RegisteredModelNameRequest):
    stages = serializers.ListField(
        child=serializers.CharField(), required=False, help_text=f"default: all; {_STAGE_HELP}"
    )


class RegisteredModelTagKeyRequest(RegisteredModelNameRequest):
    key = serializers.CharField()


class RegisteredModelTagRequest(RegisteredModelTagKeyRequest):
    value = serializers.CharField(allow_blank=True)


class AliasRequest(RegisteredModelNameRequest):
    alias = serializers.CharField()


class ModelVersionRequest(RegisteredModelNameRequest):
    version = serializers.CharField()


class SetAliasRequest(ModelVersionRequest):
    alias = serializers.CharField()


class UpdateVersionDescriptionRequest(ModelVersionRequest):
    description = serializers.CharField(required=False, allow_blank=True)


class ModelVersionTagKeyRequest(ModelVersionRequest):
    key = serializers.CharField()


class ModelVersionTagRequest(ModelVersionTagKeyRequest):
    value = serializers.CharField(allow_blank=True)


class CreateModelVersionRequest(RegisteredModelNameRequest):
    source = serializers.CharField(help_text="runs:/<run_id>/model")
    run_id = serializers.CharField(required=False)
    tags = MlflowKeyValueSerializer(many=True, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    run_link = serializers.CharField(required=False, help_text="accepted, not stored")


class TransitionStageRequest(ModelVersionRequest):
    stage = serializers.CharField(help_text=_STAGE_HELP)
    archive_existing_versions = serializers.BooleanField(
        required=False,
        help_text="Production always archives its previous version; for Staging, true archives "
        "the other Staging versions",
    )


class RegisteredModelResponse(serializers.Serializer):
    registered_model = MlflowRegisteredModelSerializer()


class ModelVersionResponse(serializers.Serializer):
    model_version = MlflowModelVersionSerializer()


class ModelVersionsResponse(serializers.Serializer):
    model_versions = MlflowModelVersionSerializer(many=True)


class SearchRegisteredModelsResponse(serializers.Serializer):
    registered_models = MlflowRegisteredModelSerializer(many=True)
    next_page_token = serializers.CharField(required=False)


class SearchModelVersionsResponse(ModelVersionsResponse):
    next_page_token = serializers.CharField(required=False)
