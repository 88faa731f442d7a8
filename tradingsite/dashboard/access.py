"""Who may see and do what on the dashboards: anonymous visitors go to the login page, a
logged-in user without a section's view permission gets a 403 page, and the admin-only views
(promote, roll back) refuse everyone without registry.promote_modelversion with a 403."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from tradingsite.dashboard.roles import can_promote

View = Callable[..., HttpResponse]


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "dashboard/forbidden.html", {"message": message}, status=403)


def dashboard_view(permission: str) -> Callable[[View], View]:
    """Login required (redirect to the dashboard login), then `permission` (403 page)."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("dashboard:login"))
            if not user.has_perm(permission):
                return forbidden(
                    request,
                    f"Your account lacks the permission {permission}: ask an administrator "
                    "for the analyst role.",
                )
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def model_admin_view(view: View) -> View:
    """The promotion and rollback pages: model admins only (analysts get a 403, GET and POST)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("dashboard:login"))
        if not can_promote(request.user):
            return forbidden(
                request,
                "Promotions and rollbacks need the permission registry.promote_modelversion "
                "(the model admin role); analysts can read every page but change nothing.",
            )
        return view(request, *args, **kwargs)

    return wrapped
