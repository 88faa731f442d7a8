"""/dashboard/models/ (in the `dashboard` namespace)."""

from __future__ import annotations

from django.urls import path

from registry import views

urlpatterns = [
    path("", views.model_list, name="model-list"),
    path("<str:name>/", views.model_detail, name="model-detail"),
    path("<str:name>/rollback/", views.model_rollback, name="model-rollback"),
    path("<str:name>/versions/<int:number>/", views.version_detail, name="model-version-detail"),
    path(
        "<str:name>/versions/<int:number>/promote/",
        views.version_promote,
        name="model-version-promote",
    ),
]
