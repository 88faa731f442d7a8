from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tradingsite.models import AuditEvent, LoginLockout, RevokedToken, SchedulerHeartbeat
from tradingsite.security.lockout import unlock


@admin.register(RevokedToken)
class RevokedTokenAdmin(admin.ModelAdmin):
    list_display = ("jti", "token_type", "user", "revoked_at", "expires_at")
    search_fields = ("jti", "user__username")


@admin.register(LoginLockout)
class LoginLockoutAdmin(admin.ModelAdmin):
    """Failed-login counts and lockouts (tradingsite.security.lockout). Rows are written only by
    failed logins; an admin lifts a lockout with the "Unlock" action, which is audited."""

    list_display = (
        "username", "failures", "locked_until", "last_failure_at", "last_failure_ip",
        "window_started_at",
    )  # fmt: skip
    search_fields = ("username", "last_failure_ip")
    readonly_fields = [f.name for f in LoginLockout._meta.fields]
    actions = ["unlock_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LoginLockout | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LoginLockout | None = None) -> bool:
        return False  # deleting is unlocking: only through the audited action

    @admin.action(description="Unlock the selected usernames", permissions=["unlock"])
    def unlock_selected(self, request: HttpRequest, queryset: QuerySet[LoginLockout]) -> None:
        count = unlock(queryset, actor=request.user, request=request)
        self.message_user(request, f"Unlocked {count} username(s).", messages.SUCCESS)

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tradingsite.delete_loginlockout")


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
