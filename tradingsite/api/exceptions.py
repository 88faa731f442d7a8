"""One JSON error shape for the whole API; an unreachable database is a fast 503, not a 500."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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
    if isinstance(exc, PermissionDenied):
        _audit_denied(exc, context)
    return drf_exception_handler(exc, context)


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
