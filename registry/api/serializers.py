from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.models import (
    ALIAS_PATTERN,
    ModelVersion,
    RegisteredModel,
    Stage,
    StageTransition,
)
from registry.services import MAX_REASON_CHARS


class RuleResultSerializer(serializers.Serializer):
    rule = serializers.CharField()
    passed = serializers.BooleanField()
    reason = serializers.CharField()


class VersionSummarySerializer(serializers.ModelSerializer):
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["version", "stage", "aliases"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_aliases(self, version: ModelVersion) -> list[str]:
        return sorted(a.alias for a in version.aliases.all())


class VersionFeatureViewSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()


class ModelVersionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    run_id = serializers.CharField(source="run.run_uuid", allow_null=True, default=None)
    feature_view = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None)
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "model", "version", "stage", "description", "aliases", "run_id", "feature_view",
            "training_set", "artifact_path", "artifact_sha256", "metrics", "created_by",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(VersionFeatureViewSerializer(allow_null=True))
    def get_feature_view(self, version: ModelVersion) -> dict[str, Any] | None:
        view = version.feature_view
        return None if view is None else {"name": view.name, "version": view.version}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_aliases(self, version: ModelVersion) -> list[str]:
        return sorted(a.alias for a in version.aliases.all())


class ModelVersionDetailSerializer(ModelVersionSerializer):
    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "reference_statistics"]
        read_only_fields = fields


class RegisteredModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", default=None)
    versions = VersionSummarySerializer(many=True, read_only=True)
    aliases = serializers.SerializerMethodField()
    production_version = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "name", "description", "tags", "owner", "created_at", "updated_at",
            "production_version", "versions", "aliases",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_aliases(self, model: RegisteredModel) -> dict[str, int]:
        return {a.alias: a.version.version for a in model.aliases.all()}

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_production_version(self, model: RegisteredModel) -> int | None:
        return next((v.version for v in model.versions.all() if v.stage == Stage.PRODUCTION), None)


class StageTransitionSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.version")
    actor = serializers.CharField(source="actor.username", default=None)
    policy_results = RuleResultSerializer(many=True)
    # Plain strings: the Stage enum is named once (StageEnum), on ModelVersion.stage.
    from_stage = serializers.CharField()
    to_stage = serializers.CharField()

    class Meta:
        model = StageTransition
        fields = [
            "id", "version", "from_stage", "to_stage", "outcome", "actor", "reason",
            "policy_results", "override_justification", "request_id", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class VersionCreateSerializer(serializers.Serializer):
    run_id = serializers.RegexField(r"^[0-9a-f]{32}$", help_text="the run's 32-hex run id")
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class PromoteSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.choices)
    reason = serializers.CharField(max_length=MAX_REASON_CHARS)
    override_justification = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_REASON_CHARS, default=""
    )
    expected_production_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text=(
            "The Production version number the caller decided on (null: none). If Production "
            "changed since, the promotion is a 409 conflict. Default: the state when the "
            "request arrives."
        ),
    )


class RollbackSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_REASON_CHARS)


class AliasSetSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class AliasSerializer(serializers.Serializer):
    alias = serializers.RegexField(ALIAS_PATTERN)
    version = serializers.IntegerField()


class PolicyCheckSerializer(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField()
    stage = serializers.CharField()
    passed = serializers.BooleanField()
    policy_source = serializers.CharField()
    results = RuleResultSerializer(many=True)


class RegistryErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    policy_results = RuleResultSerializer(many=True, required=False)
    transition_id = serializers.IntegerField(required=False)
