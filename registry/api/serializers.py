from __future__ import annotations

from collections import Counter
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from features.constants import SYMBOL_MAX_LENGTH
from registry.models import (
    ALIAS_PATTERN,
    ModelVersion,
    RegisteredModel,
    Signal,
    Stage,
    StageTransition,
)
from registry.services import MAX_REASON_CHARS
from registry.serving import MAX_PREDICT_SYMBOLS
from tradingsite.api.fields import StringField


class RuleResultSerializer(serializers.Serializer):
    rule = StringField()
    passed = serializers.BooleanField()
    reason = StringField()


class VersionSummarySerializer(serializers.ModelSerializer):
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["version", "stage", "aliases"]

    @extend_schema_field(serializers.ListField(child=StringField()))
    def get_aliases(self, version: ModelVersion) -> list[str]:
        return sorted(a.alias for a in version.aliases.all())


class VersionFeatureViewSerializer(serializers.Serializer):
    name = StringField()
    version = serializers.IntegerField()


class ModelVersionSerializer(serializers.ModelSerializer):
    model = StringField(source="model.name")
    run_id = StringField(source="run.run_uuid", allow_null=True, default=None)
    feature_view = serializers.SerializerMethodField()
    created_by = StringField(source="created_by.username", default=None)
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

    @extend_schema_field(serializers.ListField(child=StringField()))
    def get_aliases(self, version: ModelVersion) -> list[str]:
        return sorted(a.alias for a in version.aliases.all())


class ModelVersionDetailSerializer(ModelVersionSerializer):
    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "reference_statistics"]
        read_only_fields = fields


class RegisteredModelSerializer(serializers.ModelSerializer):
    owner = StringField(source="owner.username", default=None)
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
    actor = StringField(source="actor.username", default=None)
    policy_results = RuleResultSerializer(many=True)
    # Plain strings: the Stage enum is named once (StageEnum), on ModelVersion.stage.
    from_stage = StringField()
    to_stage = StringField()

    class Meta:
        model = StageTransition
        fields = [
            "id", "version", "from_stage", "to_stage", "outcome", "actor", "reason",
            "policy_results", "override_justification", "request_id", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class VersionCreateSerializer(serializers.Serializer):
    run_id = serializers.RegexField(r"^[0-9a-f]{32}$", help_text="the run's 32-hex run id")
    description = StringField(required=False, allow_blank=True, max_length=5000)


class PromoteSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.choices)
    reason = StringField(max_length=MAX_REASON_CHARS)
    override_justification = StringField(
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
    reason = StringField(max_length=MAX_REASON_CHARS)


class AliasSetSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class AliasSerializer(serializers.Serializer):
    alias = serializers.RegexField(ALIAS_PATTERN)
    version = serializers.IntegerField()


class PolicyCheckSerializer(serializers.Serializer):
    model = StringField()
    version = serializers.IntegerField()
    stage = StringField()
    passed = serializers.BooleanField()
    policy_source = StringField()
    results = RuleResultSerializer(many=True)


class RegistryErrorSerializer(serializers.Serializer):
    detail = StringField()
    code = StringField()
    policy_results = RuleResultSerializer(many=True, required=False)
    transition_id = serializers.IntegerField(required=False)


# --- serving ------------------------------------------------------------------------------------

SYMBOL_PATTERN = rf"^[^\s\x00-\x1f\x7f]{{1,{SYMBOL_MAX_LENGTH}}}$"


class SymbolField(serializers.RegexField):
    """A symbol string: JSON numbers are refused rather than turned into text."""

    def __init__(self, **kwargs: Any) -> None:
        message = f"a symbol is a string of 1 to {SYMBOL_MAX_LENGTH} characters, no spaces"
        super().__init__(SYMBOL_PATTERN, error_messages={"invalid": message}, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class PredictInputSerializer(serializers.Serializer):
    symbols = serializers.ListField(
        child=SymbolField(),
        min_length=1,
        max_length=MAX_PREDICT_SYMBOLS,
        help_text=f'1 to {MAX_PREDICT_SYMBOLS} distinct symbols, e.g. ["AAPL", "SPY"]',
    )

    def validate_symbols(self, symbols: list[str]) -> list[str]:
        repeated = sorted(s for s, n in Counter(symbols).items() if n > 1)
        if repeated:
            raise serializers.ValidationError(f"symbols are repeated: {repeated}")
        return symbols


class PredictionSerializer(serializers.Serializer):
    symbol = StringField()
    signal = serializers.ChoiceField(
        choices=Signal.choices,
        allow_null=True,
        help_text="long when P(up) > 0.5, short when < 0.5, flat at 0.5 (the training rule); "
        "null when the symbol could not be predicted (see error)",
    )
    probability = serializers.FloatField(
        allow_null=True, help_text="P(the next bar closes higher than this one)"
    )
    as_of = serializers.DateTimeField(
        allow_null=True, help_text="close time of the bar whose features were used"
    )
    stale = serializers.BooleanField(
        allow_null=True,
        help_text="true when the features are older than the feature view's ttl: the signal "
        "describes an old bar (it is still given; the client decides whether to trade on it)",
    )
    error = StringField(
        allow_null=True,
        help_text="no_features: the online store has no values for this symbol in the model's "
        "feature view version (unknown symbol, or not materialized); the other symbols of the "
        "request are still answered",
    )
    detail = StringField(required=False, help_text="what went wrong, when error is set")


class PredictOutputSerializer(serializers.Serializer):
    model = StringField()
    version = serializers.IntegerField(help_text="the Production version that answered")
    feature_view = VersionFeatureViewSerializer(
        help_text="the feature view version the model was trained on, whose online values were used"
    )
    request_id = StringField(help_text="also on each logged prediction")
    latency_ms = serializers.FloatField(
        help_text="server-side time: model check, online features, inference, log and event"
    )
    predictions = PredictionSerializer(many=True, help_text="one per symbol, in request order")
