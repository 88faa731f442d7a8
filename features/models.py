from __future__ import annotations

from django.db import models


class FeatureDefinition(models.Model):
    """A named, parameterised feature computed by a pure function of OHLCV bars."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    dtype = models.CharField(max_length=16, default="float64")
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FeatureView(models.Model):
    """One version of a named set of features; a changed definition is a new version."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    timeframe = models.CharField(max_length=8, default="1d")
    ttl_seconds = models.PositiveIntegerField(default=86_400)
    features = models.ManyToManyField(FeatureDefinition, related_name="views", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="feature_view_name_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
