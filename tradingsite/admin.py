from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from tradingsite.models import AuditEvent, RevokedToken, SchedulerHeartbeat


@admin.register(RevokedToken)
class RevokedTokenAdmin(admin.ModelAdmin):
    list_display = ("jti", "token_type", "user", "revoked_at", "expires_at")
    search_fields = ("jti", "user__username")


@admin.register(SchedulerHeartbeat)
class SchedulerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "last_beat_at", "hostname")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: audit events are written by tradingsite.audit.record() and never edited.
    Users with tradingsite.view_auditevent (superusers hold it) see the list."""

    list_display = (
        "time", "action", "outcome", "actor_username", "source_ip", "target_type", "target_repr",
        "request_id",
    )  # fmt: skip
    list_filter = ("action", "outcome", "target_type", "time")
    search_fields = ("actor_username", "target_id", "target_repr", "request_id", "source_ip")
    date_hierarchy = "time"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    list_select_related = False
    show_full_result_count = False  # a count(*) over a large trail on every page is wasted work

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
