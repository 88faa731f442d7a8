"""/dashboard/: the `dashboard` namespace. Each app's urls.py adds its pages under its prefix."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from tradingsite.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="dashboard/login.html",
            redirect_authenticated_user=True,
            next_page="dashboard:overview",
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="dashboard:login"), name="logout"),
    path("drift/", include("drift.urls")),
    path("models/", include("registry.urls")),
    path("experiments/", include("experiments.urls")),
    path("features/", include("features.urls")),
]
