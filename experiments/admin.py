from django.contrib import admin

from experiments.models import Experiment, Run


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "lifecycle", "created_at")
    search_fields = ("name",)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("experiment", "name", "status", "start_time", "end_time")
    list_filter = ("status",)
