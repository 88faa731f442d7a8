"""Drift in the admin: scans and reports are records (read only), threshold overrides are the one
thing edited here, and webhook deliveries can be sent again."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from drift.constants import FEATURE_COLUMNS
from drift.models import (
    DriftFeatureResult,
    DriftReport,
    DriftScan,
    DriftScanItem,
    DriftThresholdOverride,
    DriftWebhookDelivery,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class DriftScanItemInline(ReadOnlyInline):
    model = DriftScanItem
    fields = ("model_version", "outcome", "report", "detail", "worker")


@admin.register(DriftScan)
class DriftScanAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "status",
        "trigger",
        "requested_by",
        "models_watched",
        "reports_created",
        "duplicates",
        "skipped",
        "failed",
    )
    list_filter = ("status", "trigger")
    inlines = [DriftScanItemInline]


class DriftFeatureResultInline(ReadOnlyInline):
    model = DriftFeatureResult
    fields = ("name", "severity", "drifted", *FEATURE_COLUMNS)


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdmin):
    list_display = (
        "model_version",
        "window_start",
        "window_end",
        "severity",
        "prediction_severity",
        "share_drifted",
        "consecutive_high",
        "escalated",
        "source",
    )
    list_filter = ("severity", "prediction_severity", "escalated", "source")
    search_fields = ("model_version__model__name",)
    list_select_related = ("model_version__model",)
    inlines = [DriftFeatureResultInline]


@admin.register(DriftThresholdOverride)
class DriftThresholdOverrideAdmin(admin.ModelAdmin):
    """Saved through the form, so `clean()` refuses thresholds drift.severity would reject."""

    list_display = ("feature_view_name", "updated_at", "note")
    search_fields = ("feature_view_name",)


@admin.register(DriftWebhookDelivery)
class DriftWebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event_type", "url", "status", "attempts", "response_status")
    list_filter = ("status", "event_type")
    actions = ["send_again"]

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("drift.change_driftwebhookdelivery")

    @admin.action(description="Send again (same idempotency key)", permissions=["resend"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[DriftWebhookDelivery]) -> None:
        from drift.tasks import drift_webhook_deliver_task

        ids = list(queryset.values_list("pk", flat=True))
        queryset.update(status=DriftWebhookDelivery.Status.PENDING, attempts=0)
        for delivery_id in ids:
            drift_webhook_deliver_task.delay(delivery_id)
        self.message_user(request, f"Queued {len(ids)} delivery(ies) again.")
