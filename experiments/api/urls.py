from django.urls import path

from experiments.api import views

urlpatterns = [
    path("experiments/", views.ExperimentListView.as_view(), name="experiments"),
    path("experiments/<int:pk>", views.ExperimentDetailView.as_view(), name="experiment"),
    path("runs/", views.RunListView.as_view(), name="runs"),
    path("runs/compare", views.RunCompareView.as_view(), name="runs-compare"),
    path("runs/<str:run_id>", views.RunDetailView.as_view(), name="run"),
    path("runs/<str:run_id>/log-batch", views.RunLogBatchView.as_view(), name="run-log-batch"),
    path(
        "runs/<str:run_id>/metric-history",
        views.RunMetricHistoryView.as_view(),
        name="run-metric-history",
    ),
    path("runs/<str:run_id>/artifacts", views.RunArtifactListView.as_view(), name="run-artifacts"),
    path(
        "runs/<str:run_id>/artifacts/<path:path>",
        views.RunArtifactView.as_view(),
        name="run-artifact",
    ),
]
