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


class Topic(models.TextChoices):
    DRIFT = "drift", "Drift"
    MODELS = "models", "Models"
    FEATURES = "features", "Features"
    PREDICTIONS = "predictions", "Predictions"
    SYSTEM = "system", "System"


class Event(models.Model):
    """A domain event in the outbox, written in the transaction of the change it describes.

    Ids grow in commit order (publishers serialize on a lock), and `previous_in_topic` names the
    event before it in its topic, so a subscriber can tell a gap from a quiet topic.
    """

    id = models.BigAutoField(primary_key=True)
    topic = models.CharField(max_length=16, choices=Topic.choices)
    type = models.CharField(max_length=100)
    subject = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict)
    previous_in_topic = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["topic", "id"], name="event_topic_id")]

    def __str__(self) -> str:
        return f"#{self.id} {self.type} {self.subject}"

    def to_message(self) -> dict[str, object]:
        return {
            "id": self.id,
            "topic": self.topic,
            "type": self.type,
            "subject": self.subject,
            "payload": self.payload,
            "previous_in_topic": self.previous_in_topic,
            "created_at": self.created_at.isoformat(),
        }


class ApiToken(models.Model):
    """A long-lived personal API token (`ts_…`) for scripts such as MLflow clients.

    Only the token's SHA-256 is stored: the token itself is shown once, when it is created.
    Revocation sets `revoked_at`; the database is asked on every request, so it takes effect
    on the next one.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=16, help_text="the token's first characters, to tell tokens apart"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
