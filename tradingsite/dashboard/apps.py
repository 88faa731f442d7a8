from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DashboardConfig(AppConfig):
    """Server-rendered dashboards: the overview, login and base layout, the analyst and model
    admin roles, and the static finder for plotly.js. Each app renders its own pages."""

    name = "tradingsite.dashboard"
    label = "dashboard"
    verbose_name = "Dashboards"

    def ready(self) -> None:
        from tradingsite.dashboard.roles import roles_ensure_after_migrate

        post_migrate.connect(
            roles_ensure_after_migrate, sender=self, dispatch_uid="dashboard-roles"
        )
