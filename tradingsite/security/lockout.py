"""Account lockout: repeated wrong passwords for one username lock it for a cool-off period.

The IP rate limit (tradingsite.security.ratelimit) slows one client down; it does nothing
against a password spray from many addresses at one account. Here every failed password login
for a username counts, whoever sends it: LOGIN_LOCKOUT_FAILURES failures within
LOGIN_LOCKOUT_WINDOW_SECONDS lock it for LOGIN_LOCKOUT_SECONDS, during which even the correct
password is refused with 429 + Retry-After (reliability.md T12, T15). A successful login clears
the count. Admins lift a lockout in the Django admin (audited).

It covers every login that goes through `django.contrib.auth.authenticate()` with a password:
the JWT token endpoint, the dashboard and the admin login forms. The database is the only
store (tradingsite.models.LoginLockout): a login costs a password hash anyway, one indexed read
more is nothing, and a Redis outage can neither unlock an account nor fail the check open.
The username is keyed casefolded and whether or not the account exists, so a lockout says
nothing about which accounts exist (django-axes' username mode does the same).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from tradingsite.models import AuditAction, AuditOutcome, LoginLockout

LOCKED_ATTRIBUTE = "_tradingsite_login_locked_until"
MAX_USERNAME = LoginLockout._meta.get_field("username").max_length


def lockout_key(username: object) -> str:
    return str(username).strip().casefold()[:MAX_USERNAME]


def locked_until(username: object, *, now: datetime | None = None) -> datetime | None:
    """When the lockout of `username` ends, or None when it is not locked."""
    now = now or timezone.now()
    return (
        LoginLockout.objects.filter(username=lockout_key(username), locked_until__gt=now)
        .values_list("locked_until", flat=True)
        .first()
    )


def failure_record(username: object, *, request: HttpRequest | None = None) -> datetime | None:
    """Count one failed password login; returns the lockout's end if the username is locked
    now (by this failure, or by a concurrent one while this password was being checked).

    One row per username, updated under a row lock, so concurrent failures all count."""
    from tradingsite import audit  # imported here: audit imports this module
    from tradingsite.security.ratelimit import client_ip

    key = lockout_key(username)
    if not key:
        return None
    now = timezone.now()
    window = timedelta(seconds=settings.LOGIN_LOCKOUT_WINDOW_SECONDS)
    ip = client_ip(request) if request is not None else None
    with transaction.atomic():
        row, created = LoginLockout.objects.select_for_update().get_or_create(
            username=key, defaults={"window_started_at": now, "last_failure_at": now}
        )
        if row.locked_until is not None and row.locked_until > now:
            return row.locked_until  # locked meanwhile: not counted, answered as locked
        if not created and (now - row.window_started_at > window or row.locked_until):
            row.failures, row.window_started_at, row.locked_until = 0, now, None  # a new window
        row.failures += 1
        row.last_failure_at = now
        row.last_failure_ip = audit.ip_or_none(ip)
        newly_locked = row.failures >= settings.LOGIN_LOCKOUT_FAILURES
        if newly_locked:
            row.locked_until = now + timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
        row.save()
        if newly_locked:
            audit.record(
                AuditAction.ACCOUNT_LOCKED,
                outcome=AuditOutcome.DENIED,
                actor_username=key,
                request=request,
                target_type="tradingsite.loginlockout",
                target_id=row.pk,
                target_repr=key,
                details={
                    "failures": row.failures,
                    "window_seconds": settings.LOGIN_LOCKOUT_WINDOW_SECONDS,
                    "locked_until": row.locked_until.isoformat(),
                },
            )
            return row.locked_until
    return None


def success_clear(username: object) -> None:
    LoginLockout.objects.filter(username=lockout_key(username)).delete()


def unlock(rows: Any, *, actor: Any, request: HttpRequest | None = None) -> int:
    """Lift the lockouts (and failure counts) of `rows`, one audit event each."""
    from tradingsite import audit

    count = 0
    with transaction.atomic():
        for row in rows.select_for_update():
            audit.record(
                AuditAction.ACCOUNT_UNLOCKED,
                actor=actor,
                request=request,
                target_type="tradingsite.loginlockout",
                target_id=row.pk,
                target_repr=row.username,
                details={
                    "failures": row.failures,
                    "locked_until": row.locked_until.isoformat() if row.locked_until else None,
                },
            )
            row.delete()
            count += 1
    return count


def _http_request(request: Any) -> HttpRequest | None:
    return getattr(request, "_request", request)  # DRF's Request wraps the HttpRequest


class LockoutModelBackend(ModelBackend):
    """Django's ModelBackend, refusing a locked username before checking its password.

    The refusal is a PermissionDenied: authenticate() then stops asking backends, sends
    user_login_failed and returns None, so every login view fails as for a wrong password;
    LockoutResponseMiddleware turns that response into a 429 naming the wait."""

    def authenticate(
        self,
        request: Any,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        until = locked_until(username)
        if until is not None:
            http_request = _http_request(request)
            if http_request is not None:
                setattr(http_request, LOCKED_ATTRIBUTE, until)
            raise PermissionDenied("account locked")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            success_clear(username)
        return user


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    """user_login_failed receiver: count the failure unless the account was already locked."""
    http_request = _http_request(request)
    if http_request is not None and hasattr(http_request, LOCKED_ATTRIBUTE):
        return
    username = credentials.get(get_user_model().USERNAME_FIELD, credentials.get("username"))
    if username is None:
        return
    until = failure_record(username, request=http_request)
    if until is not None and http_request is not None:
        setattr(http_request, LOCKED_ATTRIBUTE, until)  # this very attempt is answered 429


class LockoutResponseMiddleware:
    """A login refused because the account is locked gets 429 + Retry-After: JSON on the API,
    a page on the login forms (whose own message would wrongly blame the password)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        until = getattr(request, LOCKED_ATTRIBUTE, None)
        if until is None:
            return response
        retry_after = max(1, math.ceil((until - timezone.now()).total_seconds()))
        message = (
            f"This account is locked after {settings.LOGIN_LOCKOUT_FAILURES} failed logins. "
            f"Try again in {retry_after} s, or ask an administrator to unlock it."
        )
        if request.path.startswith("/api/"):
            locked: HttpResponse = JsonResponse(
                {"detail": message, "code": "account_locked"}, status=429
            )
        else:
            locked = TemplateResponse(
                request, "dashboard/forbidden.html", {"message": message}, status=429
            ).render()
        locked["Retry-After"] = str(retry_after)
        return locked
