"""The model registry: named models, numbered versions with their lineage, stages, aliases and the
immutable history of every stage-transition attempt (who, when, why, what the policy said)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from features.constants import SYMBOL_MAX_LENGTH
from features.fields import FloatListField

ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"  # reliability.md: display names never hold paths
MAX_MODEL_BYTES = 16 * 1024 * 1024  # a model document is kilobytes; bigger is not one of ours


class Stage(models.TextChoices):
    NONE = "None", "None"
    STAGING = "Staging", "Staging"
    PRODUCTION = "Production", "Production"
    ARCHIVED = "Archived", "Archived"


class RegisteredModel(models.Model):
    """A named model; its versions move through stages."""

    name = models.CharField(
        max_length=128, unique=True, validators=[RegexValidator(MODEL_NAME_PATTERN)]
    )
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="registered_models",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("override_promotion_policy", "Can override the promotion policy (with justification)")
        ]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One version of a registered model, with the lineage copied from its run at registration
    (so it outlives the run). At most one version per model is in Production."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # Where the model came from as its registrant named it (MLflow's `source`, e.g.
    # "runs:/<run id>/model"); lineage proper is in run/feature_view/artifact_sha256.
    source = models.CharField(max_length=1024, blank=True)
    run = models.ForeignKey(
        "experiments.Run",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_versions",
    )
    feature_view = models.ForeignKey(
        "features.FeatureView",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_versions",
    )
    training_set = models.JSONField(null=True, blank=True)
    artifact_path = models.CharField(max_length=1024)
    artifact_sha256 = models.CharField(max_length=64)
    metrics = models.JSONField(default=dict, blank=True)
    reference_statistics = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_versions",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-version"]
        permissions = [("promote_modelversion", "Can promote a model version to another stage")]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_number"),
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(stage="Production"),
                name="one_production_version_per_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version} ({self.stage})"


class ModelAlias(models.Model):
    """A movable name (`champion`) that points at one version of a model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=64, validators=[RegexValidator(ALIAS_PATTERN)])
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "alias"]
        constraints = [
            models.UniqueConstraint(fields=["model", "alias"], name="model_alias_unique")
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}"


class ImmutableRowError(RuntimeError):
    """Audit rows are written once and never changed or deleted."""


class StageTransitionQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise ImmutableRowError("stage transitions are immutable")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableRowError("stage transitions are immutable")


class StageTransition(models.Model):
    """One attempt to move a version between stages, and how it ended. Immutable."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        REFUSED = "refused", "Refused by policy"
        OVERRIDDEN = "overridden", "Applied by override"
        CONFLICT = "conflict", "Lost a concurrent promotion"

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="transitions")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="transitions")
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stage_transitions",
    )
    reason = models.TextField()
    policy_results = models.JSONField(default=list, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    override_justification = models.TextField(blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = StageTransitionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "-created_at"], name="transition_model_time")]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_stage} -> {self.to_stage} ({self.outcome})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ImmutableRowError("stage transitions are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableRowError("stage transitions are immutable")


class Signal(models.TextChoices):
    """The trading signal of a prediction (experiments.training.positions_from_proba's +1/-1/0)."""

    LONG = "long", "Long"
    SHORT = "short", "Short"
    FLAT = "flat", "Flat"


class PredictionLog(models.Model):
    """One served prediction: the exact input feature vector (in the feature view version's
    order, NaN where the online store had no value), the predicted P(up) and its signal, the bar
    time of the features and the request's latency. Drift monitoring reads these rows as its
    current window. Rows are written in batches by registry.prediction_log (one COPY per flush,
    off the request path; PREDICTION_LOG_MODE=sync writes a request's rows before it answers)."""

    id = models.BigAutoField(primary_key=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="predictions", db_index=False
    )
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    as_of = models.DateTimeField(help_text="close time of the bar the features describe")
    features = FloatListField(help_text="input values in the feature view's feature order")
    probability = models.FloatField(help_text="predicted P(next bar closes higher)")
    signal = models.CharField(max_length=5, choices=Signal.choices)
    stale = models.BooleanField(help_text="the features were older than the view's ttl")
    latency_ms = models.FloatField(help_text="the request's serving latency up to this log")
    request_id = models.CharField(max_length=128, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["model_version", "created_at"], name="prediction_version_time"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version_id}: {self.symbol} {self.signal} p={self.probability:.3f}"
