"""One JSON error shape for the whole API; an unreachable database is a fast 503, not a 500,
and a hostile body (too big, too many fields, nested past the recursion limit) a 4xx."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import DataError, InterfaceError, OperationalError
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, ErrorDetail, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from tradingsite import audit
from tradingsite.models import AuditAction, AuditOutcome
from tradingsite.security.breakers import CircuitOpenError

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, OperationalError | InterfaceError | CircuitOpenError):
        logger.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
        response = Response(
            {"detail": "A backing service is unavailable; retry shortly.", "code": "unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, RequestDataTooBig):  # Django's own response would be a 400 HTML page
        return Response(
            {"detail": "Request body is too large.", "code": "payload_too_large"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent | RecursionError):
        # RecursionError: a structure nested past what Python walks; a bad request, not a 500.
        detail = (
            "Request body is nested too deeply." if isinstance(exc, RecursionError) else str(exc)
        )
        return Response({"detail": detail, "code": "parse_error"}, status=400)
    if isinstance(exc, DataError):
        # A value the database refuses (a NUL in PostgreSQL text, a number out of range) that
        # got past the parser and the view's checks: the client's data, so a 400, rolled back.
        logger.warning("database refused a value: %s", exc)
        set_rollback()
        return Response(
            {
                "detail": "A value is not valid for storage (e.g. a NUL character).",
                "code": "invalid",
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, PermissionDenied):
        _audit_denied(exc, context)
    response = drf_exception_handler(exc, context)
    if isinstance(exc, AuthenticationFailed) and isinstance(exc.detail, ErrorDetail):
        response.data["code"] = exc.detail.code  # e.g. token_not_valid: clients refresh on it
    elif response is not None and isinstance(response.data, dict):
        # Every `{"detail": ...}` error carries its machine-readable code too (not_found,
        # permission_denied, ...), the shape the schema documents; field errors keep theirs.
        detail = response.data.get("detail")
        if isinstance(detail, ErrorDetail) and "code" not in response.data:
            response.data["code"] = detail.code
    return response


def _audit_denied(exc: PermissionDenied, context: dict[str, Any]) -> None:
    """A signed-in user refused an operation (function- or object-level) is an audit event;
    anonymous refusals are 401s, counted by the metrics and not audited (they are noise)."""
    request = context.get("request")
    if request is None or not getattr(request.user, "is_authenticated", False):
        return
    view = context.get("view")
    audit.record(
        AuditAction.PERMISSION_DENIED,
        outcome=AuditOutcome.DENIED,
        request=request,
        details={
            "method": request.method,
            "path": request.path,
            "view": type(view).__name__ if view is not None else "",
            "detail": str(exc.detail),
        },
    )
