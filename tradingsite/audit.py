"""The audit log: one append-only row per security-relevant or ops action, copied to the logs.

`record()` is the only writer. It stores who (user id + username snapshot), from where (the
client IP as tradingsite.security.ratelimit.client_ip sees it, honouring NUM_PROXIES), which
request (the X-Request-ID of tradingsite.observability.request_id), what (a name from the closed
set AuditAction), the outcome, the target and details. Once the row commits, the same record is
logged on the `tradingsite.audit` logger, which the LOGGING settings send to the JSON stream.

Transactions: the row is written on the caller's connection, so it commits or rolls back with
the change it describes (an applied promotion and its audit row are one commit). A refusal
must survive: registry.services commits a refused or lost (409) transition together with its
audit row before it raises, and audits requests it rejects before any transition row after
their transaction has rolled back. Callers must not wrap those services in a transaction of
their own that the exception would roll back; none does.

Where no request is passed (services called from views, the admin's LogEntry signal), the
client IP comes from AuditContextMiddleware, which keeps it for the request being handled.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import post_save
from django.http import HttpRequest, HttpResponse

from tradingsite.models import AuditAction, AuditEvent, AuditOutcome
from tradingsite.observability.request_id import current_request_id
from tradingsite.security.lockout import LOCKED_ATTRIBUTE
from tradingsite.security.ratelimit import client_ip

logger = logging.getLogger("tradingsite.audit")
_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_ip", default=None)
MAX_USERNAME = 150
MAX_REPR = 200
_ADMIN_FLAGS = {ADDITION: "addition", CHANGE: "change", DELETION: "deletion"}


def ip_or_none(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:  # "unknown", a test request without REMOTE_ADDR
        return None


def _is_user(actor: Any) -> bool:
    return actor is not None and getattr(actor, "is_authenticated", False) and actor.pk is not None


def record(
    action: str,
    *,
    outcome: str = AuditOutcome.SUCCESS,
    actor: Any = None,
    actor_username: str = "",
    request: HttpRequest | None = None,
    target: Any = None,
    target_type: str = "",
    target_id: object = "",
    target_repr: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit event (on the caller's transaction) and log it once it commits.

    `target` may be a model instance (its app_label.model_name, pk and str are taken) or left
    out in favour of the explicit `target_*` values. `actor_username` names an actor who is not
    a user row (a failed login's attempted username)."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}; see tradingsite.models.AuditAction")
    if outcome not in AuditOutcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    if request is not None and actor is None and _is_user(getattr(request, "user", None)):
        actor = request.user
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
        target_repr = target_repr or str(target)
    request_id = current_request_id()
    event = AuditEvent.objects.create(
        action=action,
        outcome=outcome,
        actor=actor if _is_user(actor) else None,
        actor_username=(actor.get_username() if _is_user(actor) else actor_username)[:MAX_USERNAME],
        source_ip=ip_or_none(client_ip(request) if request is not None else _client_ip.get()),
        request_id="" if request_id == "-" else request_id,
        target_type=target_type,
        target_id=str(target_id)[:100],
        target_repr=str(target_repr)[:MAX_REPR],
        details=details or {},
    )
    transaction.on_commit(lambda: _log(event), robust=True)
    return event


def _log(event: AuditEvent) -> None:
    logger.info(
        "audit %s %s actor=%s target=%s:%s",
        event.action,
        event.outcome,
        event.actor_username or "-",
        event.target_type or "-",
        event.target_id or "-",
        extra={
            "audit_id": event.pk,
            "audit_time": event.time.isoformat(),
            "action": event.action,
            "outcome": event.outcome,
            "actor": event.actor_username,
            "actor_id": event.actor_id,
            "source_ip": event.source_ip,
            "target_type": event.target_type,
            "target_id": event.target_id,
            "target_repr": event.target_repr,
            "details": event.details,
        },
    )


class AuditContextMiddleware:
    """Keeps the request's client IP for record() calls that get no request (services,
    signals). Placed after RequestIdMiddleware, whose request id record() reads the same way."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _client_ip.set(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            _client_ip.reset(token)


# --- signal receivers (connected in TradingsiteConfig.ready) -----------------------------------


def _on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    record(
        AuditAction.LOGIN,
        actor=user,
        request=request,
        details={"method": "session", "path": getattr(request, "path", "")},
    )


def _on_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None:  # logging out without a session: nothing happened
        return
    record(
        AuditAction.LOGOUT,
        actor=user,
        request=request,
        details={"method": "session", "path": getattr(request, "path", "")},
    )


def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django has already masked the password in `credentials`; only the username is kept.
    username = str(credentials.get("username", ""))
    details: dict[str, Any] = {"path": getattr(request, "path", "")}
    if hasattr(getattr(request, "_request", request), LOCKED_ATTRIBUTE):
        details["account_locked"] = True  # refused by tradingsite.security.lockout, unchecked
    record(
        AuditAction.LOGIN_FAILED,
        outcome=AuditOutcome.FAILURE,
        actor_username=username,
        request=request,
        details=details,
    )


def _on_admin_log_entry(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    content_type = instance.content_type
    record(
        AuditAction.ADMIN_CHANGE,
        actor=instance.user,
        target_type=content_type.app_label + "." + content_type.model if content_type else "",
        target_id=instance.object_id or "",
        target_repr=instance.object_repr,
        details={
            "flag": _ADMIN_FLAGS.get(instance.action_flag, str(instance.action_flag)),
            "change_message": instance.get_change_message(),
            "log_entry_id": instance.pk,
        },
    )


def connect_signals() -> None:
    user_logged_in.connect(_on_logged_in, dispatch_uid="tradingsite.audit.logged_in")
    user_logged_out.connect(_on_logged_out, dispatch_uid="tradingsite.audit.logged_out")
    user_login_failed.connect(_on_login_failed, dispatch_uid="tradingsite.audit.login_failed")
    post_save.connect(
        _on_admin_log_entry, sender=LogEntry, dispatch_uid="tradingsite.audit.admin_log"
    )
