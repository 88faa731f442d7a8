"""Platform-wide rows: revoked access tokens, login lockouts, the scheduler heartbeat, events,
API tokens and the audit log."""

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


class LoginLockout(models.Model):
    """Failed logins for one username and the lockout they led to (tradingsite.security.lockout).

    The database is the only store, and so the authority: a Redis outage cannot unlock anyone.
    Keyed by the casefolded username as typed, whether or not such a user exists, so a
    lockout tells an attacker nothing about which accounts exist.
    """

    username = models.CharField(max_length=150, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    last_failure_at = models.DateTimeField()
    last_failure_ip = models.GenericIPAddressField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.username} ({self.failures} failures)"


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


class AuditAction(models.TextChoices):
    """The closed set of audited actions (README "Audit log"); a new one is a code change."""

    LOGIN = "auth.login", "Login (dashboard/admin session or API token pair)"
    LOGIN_FAILED = "auth.login_failed", "Failed login"
    ACCOUNT_LOCKED = "auth.account_locked", "Account locked after repeated failed logins"
    ACCOUNT_UNLOCKED = "auth.account_unlocked", "Account lockout lifted by an admin"
    LOGOUT = "auth.logout", "Logout (session)"
    TOKEN_REVOKED = "auth.token_revoked", "JWT revoked (API logout)"
    TOKEN_REFRESH_FAILED = "auth.token_refresh_failed", "Refused JWT refresh"
    API_TOKEN_CREATED = "auth.api_token_created", "Personal API token created"
    API_TOKEN_REVOKED = "auth.api_token_revoked", "Personal API token revoked"
    PERMISSION_DENIED = "auth.permission_denied", "API operation refused to a signed-in user"
    PROMOTION = "registry.promotion", "Stage transition attempt"
    ROLLBACK = "registry.rollback", "Rollback attempt"
    ADMIN_CHANGE = "admin.change", "Change through the Django admin"
    DRIFT_SCAN_TRIGGERED = "drift.scan_triggered", "On-demand drift scan"


class AuditOutcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied (permission)"
    INVALID = "invalid", "Invalid request"
    # stage transitions (registry.models.StageTransition.Outcome)
    APPLIED = "applied", "Applied"
    OVERRIDDEN = "overridden", "Applied by policy override"
    REFUSED = "refused", "Refused by the policy"
    CONFLICT = "conflict", "Lost to a concurrent change"
    # drift scan triggers
    ACCEPTED = "accepted", "Accepted"
    RATE_LIMITED = "rate_limited", "Rate limited"


class AppendOnlyError(Exception):
    """Audit events are never changed or deleted through the application."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs: object) -> int:
        raise AppendOnlyError("audit events are append-only: no update")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are append-only: no delete")


class AuditEvent(models.Model):
    """One security-relevant or operational action, written by tradingsite.audit.record().

    Append-only: the model and its queryset refuse updates and deletes, and on PostgreSQL a
    trigger refuses UPDATE and DELETE from any client (migration 0004). The actor is a user id
    without a database constraint plus a username snapshot, so deleting a user neither
    rewrites nor loses the trail.
    """

    id = models.BigAutoField(primary_key=True)
    time = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["action", "time"], name="audit_action_time"),
            models.Index(fields=["actor_username", "time"], name="audit_actor_time"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.action} {self.outcome} {self.actor_username}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only: no update")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are append-only: no delete")
