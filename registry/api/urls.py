from django.urls import path

from registry.api import views

urlpatterns = [
    path("", views.RegisteredModelListView.as_view(), name="models"),
    path("<str:name>", views.RegisteredModelDetailView.as_view(), name="model"),
    path("<str:name>/versions/", views.ModelVersionListView.as_view(), name="model-versions"),
    path(
        "<str:name>/versions/<int:version>",
        views.ModelVersionDetailView.as_view(),
        name="model-version",
    ),
    path(
        "<str:name>/versions/<int:version>/promote",
        views.ModelVersionPromoteView.as_view(),
        name="model-version-promote",
    ),
    path("<str:name>/rollback", views.ModelRollbackView.as_view(), name="model-rollback"),
    path("<str:name>/history", views.ModelHistoryView.as_view(), name="model-history"),
    path(
        "<str:name>/policy-check", views.ModelPolicyCheckView.as_view(), name="model-policy-check"
    ),
    path("<str:name>/aliases/<str:alias>", views.ModelAliasView.as_view(), name="model-alias"),
    path("<str:name>/predict", views.ModelPredictView.as_view(), name="model-predict"),
]
