"""Write permissions of the /api/v1 views, declared per view and method (README "Roles")."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


class WritePermissions(BasePermission):
    """Reads need a login only (IsAuthenticated, before this class); a write needs the Django
    permission the view names for its method in `write_permissions`, e.g.
    `{"POST": "experiments.add_run"}`. A mutating method the view does not name is refused:
    a new write stays closed until its view says who may call it.

    Runs before the view looks anything up, so a missing object cannot turn a 403 into a 404."""

    message = "you do not have permission to perform this action"

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        needed: Mapping[str, str] = getattr(view, "write_permissions", {})
        permission = needed.get(request.method or "")
        if permission is None:
            self.message = f"{request.method} is not open to API clients here"
            return False
        self.message = f"this needs the permission {permission}"
        user = request.user
        return bool(getattr(user, "is_active", False) and user.has_perm(permission))
