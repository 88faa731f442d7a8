"""Platform-wide rows: revoked access tokens and the scheduler heartbeat."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RevokedToken(models.Model):
    """An access token revoked before it expired; the database is the authority for revocation."""

    jti = models.CharField(max_length=255, unique=True)
    token_type = models.CharField(max_length=16, default="access")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.token_type} {self.jti}"


class SchedulerHeartbeat(models.Model):
    """The last time the beat-scheduled heartbeat task ran on a worker: beat and a worker live."""

    name = models.CharField(max_length=64, unique=True)
    last_beat_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_beat_at:%Y-%m-%d %H:%M:%S}"
