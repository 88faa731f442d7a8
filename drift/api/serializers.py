"""Drift API shapes: query parameters (allow-listed filters), reports, features, histograms,
timelines, scans and the monitor."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from drift.constants import FEATURE_COLUMNS
from drift.models import (
    DriftFeatureResult,
    DriftReport,
    DriftScan,
    DriftScanItem,
    Severity,
)
from drift.selectors import ReportFilter
from tradingsite.api.fields import StringField

MAX_TIMELINE_REPORTS = 1000


def _csv_choices(value: str, choices: list[str], what: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    unknown = sorted(set(items) - set(choices))
    if unknown:
        raise serializers.ValidationError(f"unknown {what} {unknown}; choose from {choices}")
    return items


class ReportQuerySerializer(serializers.Serializer):
    model = StringField(required=False, max_length=128)
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    severity = StringField(required=False, help_text="comma-separated severities, e.g. HIGH,MEDIUM")
    min_severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    since = serializers.DateTimeField(required=False, help_text="window_end at or after")
    until = serializers.DateTimeField(required=False, help_text="window_end at or before")
    escalated = serializers.BooleanField(required=False, allow_null=True, default=None)
    source = serializers.ChoiceField(choices=DriftReport.Source.choices, required=False)

    def validate_severity(self, value: str) -> list[str]:
        return _csv_choices(value, list(Severity.values), "severities")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "version" in attrs and not attrs.get("model"):
            raise serializers.ValidationError({"version": "needs `model`"})
        return attrs

    def to_filter(self) -> ReportFilter:
        data = self.validated_data
        return ReportFilter(
            model=data.get("model", ""),
            version=data.get("version"),
            severities=tuple(data.get("severity") or ()),
            min_severity=data.get("min_severity", ""),
            since=data.get("since"),
            until=data.get("until"),
            escalated=data.get("escalated"),
            source=data.get("source", ""),
        )


class ReportSerializer(serializers.ModelSerializer):
    model = StringField(source="model_version.model.name")
    version = serializers.IntegerField(source="model_version.version")
    feature_view = serializers.SerializerMethodField()
    severity = serializers.ChoiceField(
        choices=Severity.choices,
        read_only=True,
        help_text="the higher of the features' severity and the prediction drift's",
    )
    prediction_severity = serializers.SerializerMethodField(
        help_text="severity of the predicted probabilities' drift; null when not computed"
    )

    class Meta:
        model = DriftReport
        fields = [
            "id",
            "model",
            "version",
            "feature_view",
            "scan",
            "source",
            "window_start",
            "window_end",
            "n_rows",
            "symbols",
            "severity",
            "prediction_severity",
            "share_drifted",
            "n_features_tested",
            "n_features_drifted",
            "consecutive_high",
            "escalated",
            "created_at",
        ]
        read_only_fields = fields

    def get_feature_view(self, report: DriftReport) -> str | None:
        view = report.feature_view
        return None if view is None else f"{view.name} v{view.version}"

    # An inline enum: a second ChoiceField of the severities would be a second enum component
    # of the same choices (a drf-spectacular warning); ENUM_NAME_OVERRIDES live in settings.
    @extend_schema_field({"type": "string", "enum": [*Severity.values, None], "nullable": True})
    def get_prediction_severity(self, report: DriftReport) -> str | None:
        return report.prediction_severity or None


class FeatureResultSerializer(serializers.ModelSerializer):
    statistics = serializers.SerializerMethodField(
        help_text="everything drift.statistics computed for the feature, less the histogram "
        "(see .../histograms)"
    )

    class Meta:
        model = DriftFeatureResult
        fields = ["name", "severity", "drifted", *FEATURE_COLUMNS, "statistics"]
        read_only_fields = fields

    def get_statistics(self, row: DriftFeatureResult) -> dict[str, Any]:
        return {k: v for k, v in (row.statistics or {}).items() if k != "histogram"}


class PredictionDriftSerializer(serializers.Serializer):
    """The drift of the predicted P(up) in the window against the training predictions: the
    same statistics and grading as a feature, or, when it could not be computed, why."""

    computed = serializers.BooleanField()
    origin = serializers.ChoiceField(
        choices=[
            ("logged", "the probabilities logged with the served predictions"),
            ("model", "the version's model run on the window's materialized features"),
        ],
        help_text="where the window's predicted probabilities come (or would come) from",
    )
    severity = serializers.ChoiceField(choices=Severity.choices, allow_null=True)
    drifted = serializers.BooleanField(allow_null=True)
    n = serializers.IntegerField(allow_null=True, help_text="finite predictions in the window")
    n_reference = serializers.IntegerField(
        allow_null=True, help_text="training predictions behind the reference bins"
    )
    psi = serializers.FloatField(allow_null=True)
    ks_statistic = serializers.FloatField(allow_null=True)
    p_value_corrected = serializers.FloatField(
        allow_null=True, help_text="on effective sample sizes; a test family of its own"
    )
    wasserstein_normed = serializers.FloatField(allow_null=True)
    jensen_shannon = serializers.FloatField(allow_null=True)
    statistics = serializers.JSONField(
        allow_null=True,
        help_text="everything drift.statistics computed, less the histogram (see .../histograms)",
    )
    reason = StringField(allow_blank=True, help_text="why it was not computed; empty when it was")


PREDICTION_ORIGIN = {DriftReport.Source.PREDICTIONS: "logged", DriftReport.Source.FEATURES: "model"}


def prediction_block(report: DriftReport) -> dict[str, Any]:
    """The report's prediction drift as PredictionDriftSerializer shapes it."""
    stats = report.prediction_statistics if report.prediction_severity else None
    computed = stats is not None
    return {
        "computed": computed,
        "origin": PREDICTION_ORIGIN.get(report.source, "model"),
        "severity": report.prediction_severity or None,
        "drifted": bool(stats.get("drifted")) if computed else None,
        "n": stats.get("n_cur") if computed else None,
        "n_reference": stats.get("n_ref") if computed else None,
        **{key: stats.get(key) if computed else None for key in FEATURE_COLUMNS},
        "statistics": {k: v for k, v in stats.items() if k != "histogram"} if computed else None,
        "reason": "" if computed else report.prediction_reason,
    }


class ReportDetailSerializer(ReportSerializer):
    thresholds = serializers.JSONField()
    features = FeatureResultSerializer(many=True)
    prediction = serializers.SerializerMethodField()

    class Meta(ReportSerializer.Meta):
        fields = [*ReportSerializer.Meta.fields, "thresholds", "features", "prediction"]
        read_only_fields = fields

    @extend_schema_field(PredictionDriftSerializer)
    def get_prediction(self, report: DriftReport) -> dict[str, Any]:
        return PredictionDriftSerializer(prediction_block(report)).data


class HistogramSideSerializer(serializers.Serializer):
    counts = serializers.ListField(child=serializers.IntegerField())
    shares = serializers.ListField(child=serializers.FloatField(allow_null=True))


class HistogramSerializer(serializers.Serializer):
    name = StringField()
    kind = StringField(allow_null=True)
    severity = serializers.ChoiceField(choices=Severity.choices)
    bins = serializers.ListField(child=StringField(), help_text="one label per bin")
    edges = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    categories = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    reference = HistogramSideSerializer()
    current = HistogramSideSerializer()


class HistogramsSerializer(serializers.Serializer):
    report_id = serializers.IntegerField()
    features = HistogramSerializer(many=True)
    prediction = HistogramSerializer(
        allow_null=True,
        help_text="the predicted probabilities, training (reference) vs the window; null when "
        "prediction drift was not computed (see prediction_reason)",
    )
    prediction_reason = StringField(allow_blank=True)


class FeatureQuerySerializer(serializers.Serializer):
    feature = StringField(required=False, help_text="comma-separated feature names")

    def validate_feature(self, value: str) -> list[str]:
        return [name.strip() for name in value.split(",") if name.strip()][:200]


class TimelineQuerySerializer(FeatureQuerySerializer):
    model = StringField(max_length=128)
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_TIMELINE_REPORTS, default=100)


class TimelinePointSerializer(serializers.Serializer):
    report_id = serializers.IntegerField()
    version = serializers.IntegerField()
    window_end = serializers.DateTimeField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    severity_rank = serializers.IntegerField(help_text="0 NONE, 1 LOW, 2 MEDIUM, 3 HIGH")
    drifted = serializers.BooleanField()
    psi = serializers.FloatField(allow_null=True)
    ks_statistic = serializers.FloatField(allow_null=True)
    p_value_corrected = serializers.FloatField(allow_null=True)
    wasserstein_normed = serializers.FloatField(allow_null=True)
    jensen_shannon = serializers.FloatField(allow_null=True)


class TimelineReportSerializer(serializers.Serializer):
    report_id = serializers.IntegerField()
    version = serializers.IntegerField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    share_drifted = serializers.FloatField()


class TimelineSerializer(serializers.Serializer):
    model = StringField()
    reports = TimelineReportSerializer(many=True)
    features = serializers.DictField(
        child=TimelinePointSerializer(many=True), help_text="feature name -> points, oldest first"
    )


class ScanRequestSerializer(serializers.Serializer):
    model = StringField(required=False, allow_blank=True, max_length=128, default="")
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("version") is not None and not attrs.get("model"):
            raise serializers.ValidationError({"version": "needs `model`"})
        return attrs


class ScanItemSerializer(serializers.ModelSerializer):
    model = StringField(source="model_version.model.name")
    version = serializers.IntegerField(source="model_version.version")
    report_id = serializers.IntegerField(source="report.pk", allow_null=True, default=None)
    severity = StringField(source="report.severity", allow_null=True, default=None)

    class Meta:
        model = DriftScanItem
        fields = ["model", "version", "outcome", "report_id", "severity", "detail", "worker"]
        read_only_fields = fields


class ScanSerializer(serializers.ModelSerializer):
    requested_by = StringField(source="requested_by.username", allow_null=True, default=None)

    class Meta:
        model = DriftScan
        fields = [
            "id",
            "status",
            "trigger",
            "requested_by",
            "started_at",
            "finished_at",
            "models_watched",
            "reports_created",
            "duplicates",
            "skipped",
            "failed",
            "detail",
        ]
        read_only_fields = fields


class ScanDetailSerializer(ScanSerializer):
    items = ScanItemSerializer(many=True)

    class Meta(ScanSerializer.Meta):
        fields = [*ScanSerializer.Meta.fields, "items"]
        read_only_fields = fields


class ScanAcceptedSerializer(ScanSerializer):
    status_url = serializers.SerializerMethodField()
    report_ids = serializers.SerializerMethodField(
        help_text="reports this scan created or found, once its versions are done"
    )

    class Meta(ScanSerializer.Meta):
        fields = [*ScanSerializer.Meta.fields, "status_url", "report_ids"]
        read_only_fields = fields

    def get_status_url(self, scan: DriftScan) -> str:
        return f"/api/v1/drift/scans/{scan.pk}"

    def get_report_ids(self, scan: DriftScan) -> list[int]:
        return [item.report_id for item in scan.items.all() if item.report_id is not None]


class LastScanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DriftScan.Status.choices)
    trigger = StringField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    models_watched = serializers.IntegerField()
    reports_created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    detail = StringField(allow_blank=True)


class LatestReportSerializer(serializers.Serializer):
    report_id = serializers.IntegerField()
    model = StringField()
    version = serializers.IntegerField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    window_end = serializers.DateTimeField()
    escalated = serializers.BooleanField()


class MonitorSerializer(serializers.Serializer):
    interval_seconds = serializers.IntegerField()
    models_watched = serializers.ListField(child=StringField())
    last_scan = LastScanSerializer(allow_null=True)
    last_scheduled_scan_at = serializers.DateTimeField(allow_null=True)
    next_scan_due = serializers.DateTimeField(allow_null=True)
    scans_total = serializers.IntegerField()
    latest_reports = LatestReportSerializer(many=True)
    open_high_drift = serializers.ListField(child=StringField())


class DriftErrorSerializer(serializers.Serializer):
    detail = StringField()
    code = StringField()
