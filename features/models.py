from __future__ import annotations

from django.db import models

from features.constants import SYMBOL_MAX_LENGTH, TIMEFRAME_MAX_LENGTH
from features.fields import FloatListField


class FeatureDefinition(models.Model):
    """A named, parameterised feature computed by a pure function of OHLCV bars."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    dtype = models.CharField(max_length=16, default="float64")
    params = models.JSONField(default=dict, blank=True)
    warmup_bars = models.PositiveIntegerField(default=0)
    valid_min = models.FloatField(null=True, blank=True)
    valid_max = models.FloatField(null=True, blank=True)
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
    entity = models.CharField(max_length=32, default="symbol")
    # The ordered feature list; offline rows store their values in this order.
    feature_names = models.JSONField(default=list)
    definition_hash = models.CharField(max_length=64, blank=True, db_index=True)
    watermark = models.DateTimeField(null=True, blank=True, help_text="newest materialized bar")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="feature_view_name_version")
        ]
        # Starting a materialization job (the API's materialize; the data engineer role).
        permissions = [("materialize_featureview", "Can start a materialization of a view")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Bar(models.Model):
    """One OHLCV bar, unique per (symbol, timeframe, ts), with low <= open, close <= high."""

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    timeframe = models.CharField(max_length=TIMEFRAME_MAX_LENGTH, help_text='e.g. "1d", "1h", "5m"')
    ts = models.DateTimeField(help_text="bar close time (UTC)")
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()

    class Meta:
        # No default ordering: every read of this large table says which order it needs.
        # The unique constraint's B-tree index on (symbol, timeframe, ts) also serves range reads
        # (and "latest bar", scanned backwards); a second index on the same columns would only
        # slow down bulk ingest.
        constraints = [
            models.UniqueConstraint(
                fields=["symbol", "timeframe", "ts"], name="bar_symbol_timeframe_ts"
            ),
            models.CheckConstraint(
                condition=models.Q(high__gte=models.F("low")), name="bar_high_gte_low"
            ),
            models.CheckConstraint(condition=models.Q(volume__gte=0), name="bar_volume_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.ts:%Y-%m-%d %H:%M}"


class FeatureRow(models.Model):
    """Offline store: the feature values of one view version for one symbol at one bar close.

    `values` is a list of floats aligned with the view version's `feature_names`, NaN where a
    value is missing (double precision[] on PostgreSQL: written by COPY, read without parsing).
    """

    # No index of its own: the unique (view, symbol, ts) index serves lookups by view too, and
    # a second index would be one more B-tree to update per bulk-written row.
    view = models.ForeignKey(
        FeatureView, on_delete=models.CASCADE, related_name="rows", db_index=False
    )
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    ts = models.DateTimeField()
    values = FloatListField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["view", "symbol", "ts"], name="feature_row_key")
        ]

    def __str__(self) -> str:
        return f"{self.view} {self.symbol} {self.ts:%Y-%m-%d %H:%M}"


class MaterializationJob(models.Model):
    """One materialization of a view version: status, progress and the quality it measured."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Mode(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"

    view = models.ForeignKey(FeatureView, on_delete=models.CASCADE, related_name="jobs")
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.INCREMENTAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    symbols = models.JSONField(default=list)
    symbols_done = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    quality = models.JSONField(default=dict, blank=True)
    # Per symbol, once done: rows written, newest bar, and quality counts (features.quality)
    partials = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.view} {self.mode} {self.status}"

    @property
    def progress_pct(self) -> float:
        return 100.0 if not self.symbols else round(100 * self.symbols_done / len(self.symbols), 1)
