from django.contrib import admin

from drift.models import DriftScan


@admin.register(DriftScan)
class DriftScanAdmin(admin.ModelAdmin):
    list_display = ("started_at", "status", "trigger", "models_watched", "reports_created")
    list_filter = ("status", "trigger")
    readonly_fields = [f.name for f in DriftScan._meta.fields]
