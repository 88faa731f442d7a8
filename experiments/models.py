"""Experiments, runs and what runs log: MLflow's tracking model, in our database.

Times of runs and logged values are epoch milliseconds (BigIntegerField), as MLflow's clients
send and expect them. Metrics keep their full history in `Metric`; `LatestMetric` holds one row
per (run, key), as MLflow's latest_metrics table, so search and ordering by a metric are one join.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from experiments.constants import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_EXPERIMENT_NAME_LENGTH,
    MAX_RUN_NAME_LENGTH,
    MAX_SOURCE_LENGTH,
    MAX_USER_NAME_LENGTH,
    MLFLOW_ARTIFACTS_SCHEME,
)


class Lifecycle(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


def run_uuid_new() -> str:
    return uuid.uuid4().hex


class Experiment(models.Model):
    """A named group of training runs; the name stays reserved while the experiment is deleted."""

    Lifecycle = Lifecycle

    name = models.CharField(max_length=MAX_EXPERIMENT_NAME_LENGTH, unique=True)
    description = models.TextField(blank=True)
    artifact_location = models.CharField(max_length=1000, blank=True)
    lifecycle = models.CharField(max_length=8, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_artifact_location(self) -> str:
        return self.artifact_location or f"{MLFLOW_ARTIFACTS_SCHEME}/{self.pk}"


class ExperimentTag(models.Model):
    """A key/value label of an experiment; one value per key."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=MAX_ENTITY_KEY_LENGTH)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="experiment_tag_key")
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


class Run(models.Model):
    """One training run of an experiment, addressed by MLflow's 32-character hex run id."""

    class Status(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        FINISHED = "FINISHED", "Finished"
        FAILED = "FAILED", "Failed"
        KILLED = "KILLED", "Killed"

    Lifecycle = Lifecycle

    run_uuid = models.CharField(max_length=32, unique=True, default=run_uuid_new, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=MAX_RUN_NAME_LENGTH, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    start_time = models.BigIntegerField(help_text="epoch milliseconds")
    end_time = models.BigIntegerField(null=True, blank=True, help_text="epoch milliseconds")
    # The user the client reports (MLflow's user_id), and the account that authenticated.
    user_name = models.CharField(max_length=MAX_USER_NAME_LENGTH, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="experiment_runs",
    )
    source = models.CharField(max_length=MAX_SOURCE_LENGTH, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    lifecycle = models.CharField(max_length=8, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    # Lineage: the feature view version and the training-set definition the run trained on.
    # The definition names the view and version too, so it outlives a deleted view row.
    feature_view = models.ForeignKey(
        "features.FeatureView",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
    )
    training_set = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-start_time"]
        indexes = [
            models.Index(
                fields=["experiment", "lifecycle", "-start_time"], name="run_experiment_start"
            ),
            models.Index(fields=["start_time"], name="run_start_time"),
            models.Index(fields=["status"], name="run_status"),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.run_uuid}"

    @property
    def artifact_uri(self) -> str:
        return f"{MLFLOW_ARTIFACTS_SCHEME}/{self.experiment_id}/{self.run_uuid}/artifacts"

    @property
    def is_active(self) -> bool:
        return self.lifecycle == Lifecycle.ACTIVE


class Param(models.Model):
    """A run's hyperparameter; written once per (run, key), never changed."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params", db_index=False)
    key = models.CharField(max_length=MAX_ENTITY_KEY_LENGTH)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_run_key")]
        indexes = [models.Index(fields=["key"], name="param_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


class RunTag(models.Model):
    """A key/value label of a run; setting a key again replaces its value."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags", db_index=False)
    key = models.CharField(max_length=MAX_ENTITY_KEY_LENGTH)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_tag_key")]
        indexes = [models.Index(fields=["key"], name="run_tag_key_index")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


class Metric(models.Model):
    """One logged value of a metric (the full history). NaN is stored as is_nan with value 0,
    ±inf as ±1.79e308, as MLflow's SQL store does: SQL columns hold neither."""

    id = models.BigAutoField(primary_key=True)
    # No database foreign key on this append-only history: PostgreSQL checks a deferred FK with
    # one trigger query per inserted row at commit, which was half the cost of a 1,000-point
    # batch. Every write goes through the services, which resolve the (active) run first, and
    # runs are deleted through the ORM, whose CASCADE removes their points.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="metrics", db_index=False, db_constraint=False
    )
    key = models.CharField(max_length=MAX_ENTITY_KEY_LENGTH)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField(help_text="epoch milliseconds")

    class Meta:
        indexes = [models.Index(fields=["run", "key", "step"], name="metric_run_key_step")]

    def __str__(self) -> str:
        return f"{self.key}[{self.step}]={self.value}"


class LatestMetric(models.Model):
    """The latest value of each metric of a run: highest (step, timestamp, value) wins."""

    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="latest_metrics", db_index=False
    )
    key = models.CharField(max_length=MAX_ENTITY_KEY_LENGTH)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField(help_text="epoch milliseconds")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="latest_metric_run_key")]
        indexes = [models.Index(fields=["key", "value"], name="latest_metric_key_value")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Artifact(models.Model):
    """A file of a run: its name under the run, and the sha256 of the immutable blob it names."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts", db_index=False)
    path = models.CharField(max_length=1024)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    content_type = models.CharField(max_length=127, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="artifact_run_path")]

    def __str__(self) -> str:
        return f"{self.path} ({self.sha256[:12]})"
