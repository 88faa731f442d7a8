"""/dashboard/features/ (in the `dashboard` namespace)."""

from __future__ import annotations

from django.urls import path

from features import views

urlpatterns = [
    path("", views.feature_list, name="feature-list"),
    path("views/<str:name>/", views.feature_view_detail, name="feature-view-detail"),
    path("jobs/<int:job_id>/", views.job_detail, name="feature-job-detail"),
]
