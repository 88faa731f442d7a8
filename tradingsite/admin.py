from django.contrib import admin

from tradingsite.models import RevokedToken, SchedulerHeartbeat


@admin.register(RevokedToken)
class RevokedTokenAdmin(admin.ModelAdmin):
    list_display = ("jti", "token_type", "user", "revoked_at", "expires_at")
    search_fields = ("jti", "user__username")


@admin.register(SchedulerHeartbeat)
class SchedulerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "last_beat_at", "hostname")
