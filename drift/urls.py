"""/dashboard/drift/ (in the `dashboard` namespace)."""

from __future__ import annotations

from django.urls import path

from drift import views

urlpatterns = [
    path("", views.report_list, name="drift-report-list"),
    path("reports/<int:pk>/", views.report_detail, name="drift-report-detail"),
]
