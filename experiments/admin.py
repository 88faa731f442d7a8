"""Experiments and runs in the admin: for looking, not logging. What runs log is read-only here
(params are immutable, artifacts are hashed on upload); logging goes through the APIs."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from experiments import services
from experiments.models import Artifact, Experiment, ExperimentTag, LatestMetric, Param, Run, RunTag


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> tuple[str, ...]:
        return tuple(self.fields or ())

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ExperimentTagInline(ReadOnlyInline):
    model = ExperimentTag
    fields = ("key", "value")


class ParamInline(ReadOnlyInline):
    model = Param
    fields = ("key", "value")


class LatestMetricInline(ReadOnlyInline):
    model = LatestMetric
    fields = ("key", "value", "is_nan", "step", "timestamp")
    verbose_name_plural = "latest metrics"


class RunTagInline(ReadOnlyInline):
    model = RunTag
    fields = ("key", "value")


class ArtifactInline(ReadOnlyInline):
    model = Artifact
    fields = ("path", "size_bytes", "sha256", "created_at")


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "lifecycle", "created_at", "updated_at")
    list_filter = ("lifecycle",)
    search_fields = ("name",)
    readonly_fields = ("artifact_location", "lifecycle", "created_at", "updated_at")
    inlines = [ExperimentTagInline]
    actions = ["delete_softly", "restore"]

    @admin.action(description="Delete (soft, with their runs)")
    def delete_softly(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        for experiment in queryset:
            services.experiment_delete(experiment=experiment)
        self.message_user(request, f"Deleted {len(queryset)} experiment(s) and their runs.")

    @admin.action(description="Restore (with their runs)")
    def restore(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        for experiment in queryset:
            services.experiment_restore(experiment=experiment)
        self.message_user(request, f"Restored {len(queryset)} experiment(s).")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("name", "run_uuid", "experiment", "status", "lifecycle", "start_time")
    list_filter = ("status", "lifecycle")
    search_fields = ("name", "run_uuid")
    list_select_related = ("experiment",)
    readonly_fields = (
        "run_uuid", "experiment", "status", "lifecycle", "start_time", "end_time", "user_name",
        "created_by", "source", "parent", "feature_view", "training_set",
    )  # fmt: skip
    inlines = [ParamInline, LatestMetricInline, RunTagInline, ArtifactInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
