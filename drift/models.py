from __future__ import annotations

from django.db import models


class DriftScan(models.Model):
    """One scheduled (or triggered) pass of the drift monitor over the models in Production."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=16, default="schedule")
    models_watched = models.PositiveIntegerField(default=0)
    reports_created = models.PositiveIntegerField(default=0)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"scan {self.pk} {self.status} at {self.started_at:%Y-%m-%d %H:%M}"


class DriftReport(models.Model):
    """The drift of one model version's live features over one window against its reference."""

    class Severity(models.TextChoices):
        NONE = "NONE", "None"
        LOW = "LOW", "Low"
        MEDIUM = "MEDIUM", "Medium"
        HIGH = "HIGH", "High"

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
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    severity = models.CharField(max_length=6, choices=Severity.choices)
    share_drifted = models.FloatField()
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

    def __str__(self) -> str:
        return f"{self.model_version} {self.window_start:%Y-%m-%d} {self.severity}"
