"""/dashboard/experiments/ (in the `dashboard` namespace)."""

from __future__ import annotations

from django.urls import path

from experiments import views

urlpatterns = [
    path("", views.experiment_list, name="experiment-list"),
    path("compare/", views.run_compare_view, name="run-compare"),
    path("runs/<str:run_id>/", views.run_detail, name="run-detail"),
    path("<int:experiment_id>/", views.experiment_detail, name="experiment-detail"),
]
