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
