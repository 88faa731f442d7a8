"""Drift monitoring rows: scans (one pass over the models in Production, one item per version),
reports (one per model version and window) with their per-feature results, webhook deliveries of
drift alerts, and per-feature-view threshold overrides."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class Severity(models.TextChoices):
    NONE = "NONE", "None"
    LOW = "LOW", "Low"
    MEDIUM = "MEDIUM", "Medium"
    HIGH = "HIGH", "High"


SEVERITY_RANK = {value: rank for rank, value in enumerate(Severity.values)}


class DriftScan(models.Model):
    """One pass of the drift monitor over model versions in Production (scheduled, or asked for
    through the API or `manage.py drift_scan`). A scheduled scan owns its interval `slot`: two
    beat processes firing in one interval create one scan (the partial unique index fences)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        STARTUP = "startup", "Worker start"
        API = "api", "API"
        COMMAND = "command", "Command"
        MANUAL = "manual", "Manual"

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=16, default=Trigger.SCHEDULE)
    # int(start / DRIFT_INTERVAL_SECONDS) for scheduled scans, NULL for on-demand ones.
    slot = models.BigIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="drift_scans",
    )
    version_ids = models.JSONField(default=list, blank=True)  # the versions this scan covers
    models_watched = models.PositiveIntegerField(default=0)
    reports_created = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)  # window already reported / being reported
    skipped = models.PositiveIntegerField(default=0)  # cannot be scanned (no reference, no rows)
    failed = models.PositiveIntegerField(default=0)  # unexpected error
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("run_scan", "Can run an on-demand drift scan")]
        constraints = [
            models.UniqueConstraint(
                fields=["slot"], condition=models.Q(slot__isnull=False), name="drift_scan_one_slot"
            )
        ]

    def __str__(self) -> str:
        return f"scan {self.pk} {self.status} at {self.started_at:%Y-%m-%d %H:%M}"


class DriftScanItem(models.Model):
    """What one scan did for one model version: a new report, a window already reported, or why
    it could not scan it. Written once per (scan, version), so a retried task counts once."""

    class Outcome(models.TextChoices):
        CREATED = "created", "Report created"
        DUPLICATE = "duplicate", "Window already reported"
        LOCKED = "locked", "Window being reported by another worker"
        SKIPPED = "skipped", "Cannot be scanned"
        FAILED = "failed", "Failed"

    scan = models.ForeignKey(DriftScan, on_delete=models.CASCADE, related_name="items")
    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.CASCADE, related_name="drift_scan_items"
    )
    outcome = models.CharField(max_length=9, choices=Outcome.choices)
    report = models.ForeignKey(
        "DriftReport", null=True, blank=True, on_delete=models.SET_NULL, related_name="scan_items"
    )
    detail = models.TextField(blank=True)
    worker = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["scan", "model_version"], name="drift_scan_item_once")
        ]

    def __str__(self) -> str:
        return f"scan {self.scan_id} version {self.model_version_id}: {self.outcome}"


class DriftReport(models.Model):
    """The drift of one model version's live data over one window against its reference; at
    most one per (model version, window start), written with its feature results and its
    prediction drift in one transaction. `severity` is the higher of the features' and the
    prediction drift's (drift.severity.overall_severity); the share counts features only."""

    Severity = Severity

    class Source(models.TextChoices):
        FEATURES = "features", "Materialized features"
        PREDICTIONS = "predictions", "Logged predictions"

    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.CASCADE, related_name="drift_reports"
    )
    feature_view = models.ForeignKey(
        "features.FeatureView",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="drift_reports",
    )
    scan = models.ForeignKey(
        DriftScan, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    source = models.CharField(max_length=11, choices=Source.choices, default=Source.FEATURES)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    n_rows = models.PositiveIntegerField(default=0)  # rows in the current window
    symbols = models.JSONField(default=list, blank=True)
    severity = models.CharField(max_length=6, choices=Severity.choices)
    share_drifted = models.FloatField()
    n_features_tested = models.PositiveIntegerField(default=0)
    n_features_drifted = models.PositiveIntegerField(default=0)
    thresholds = models.JSONField(default=dict, blank=True)  # the resolved thresholds used
    # Drift of the predicted P(up) (drift.services.predictions): its severity, "" when it was
    # not computed, and then `prediction_reason` says why; `prediction_statistics` holds what
    # drift.statistics returned for it (histogram included), as DriftFeatureResult.statistics.
    prediction_severity = models.CharField(max_length=6, choices=Severity.choices, blank=True)
    prediction_reason = models.TextField(blank=True)
    prediction_statistics = models.JSONField(null=True, blank=True)
    # HIGH reports in a row for this version, this one included (0 when not HIGH); escalated
    # once it reaches DRIFT_ESCALATE_AFTER.
    consecutive_high = models.PositiveIntegerField(default=0)
    escalated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-window_end", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "window_start"], name="drift_report_version_window"
            ),
            models.CheckConstraint(
                condition=models.Q(window_end__gt=models.F("window_start")),
                name="drift_report_window_order",
            ),
        ]
        indexes = [
            models.Index(fields=["model_version", "-window_end"], name="drift_report_version_end"),
            models.Index(fields=["severity", "-window_end"], name="drift_report_severity_end"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} {self.window_start:%Y-%m-%d} {self.severity}"


class DriftFeatureResult(models.Model):
    """One feature's tests in one report. The columns are what lists and charts filter and sort
    on; `statistics` keeps everything `drift.statistics` returned for it (histograms included),
    so fields added there are stored without a migration."""

    report = models.ForeignKey(DriftReport, on_delete=models.CASCADE, related_name="features")
    name = models.CharField(max_length=100)
    severity = models.CharField(max_length=6, choices=Severity.choices)
    drifted = models.BooleanField(default=False)
    psi = models.FloatField(null=True, blank=True)
    ks_statistic = models.FloatField(null=True, blank=True)
    p_value_corrected = models.FloatField(null=True, blank=True)
    wasserstein_normed = models.FloatField(null=True, blank=True)
    jensen_shannon = models.FloatField(null=True, blank=True)
    statistics = models.JSONField(default=dict)

    class Meta:
        ordering = ["report", "id"]
        constraints = [
            models.UniqueConstraint(fields=["report", "name"], name="drift_feature_once")
        ]
        indexes = [models.Index(fields=["name", "severity"], name="drift_feature_name_severity")]

    def __str__(self) -> str:
        return f"report {self.report_id} {self.name} {self.severity}"


class DriftThresholdOverride(models.Model):
    """Severity thresholds of one feature view (by name, every version), overriding
    drift.severity.DEFAULT_THRESHOLDS key by key; per-feature cut points go under "features"."""

    feature_view_name = models.CharField(max_length=100, unique=True)
    thresholds = models.JSONField(
        default=dict,
        help_text='e.g. {"psi": [0.1, 0.2, 0.3], "alpha": 0.01, '
        '"features": {"rsi_14": {"psi": [0.2, 0.3, 0.4]}}}',
    )
    note = models.TextField(blank=True, help_text="why these thresholds")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["feature_view_name"]

    def __str__(self) -> str:
        return f"drift thresholds of {self.feature_view_name}"

    def clean(self) -> None:
        from drift.severity import thresholds_resolve

        if not isinstance(self.thresholds, dict):
            raise ValidationError({"thresholds": "must be a JSON object"})
        try:
            thresholds_resolve(self.thresholds)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValidationError({"thresholds": str(exc)}) from exc


class DriftWebhookDelivery(models.Model):
    """One drift alert sent to one configured webhook URL. `key` is the idempotency key the
    receiver sees on every attempt (X-Drift-Delivery); a delivered row is never sent again."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    report = models.ForeignKey(
        DriftReport, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event_type = models.CharField(max_length=100)
    url = models.CharField(max_length=2048)
    body = models.JSONField(default=dict)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the next attempt is due; a pending row long past it lost its task (broker outage)
    # and is sent again by the next scheduled scan.
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "event_type", "url"], name="drift_webhook_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} of report {self.report_id} to {self.url}: {self.status}"
