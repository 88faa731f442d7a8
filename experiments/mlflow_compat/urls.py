"""MLflow's REST paths, mounted by tradingsite/urls.py under /api/2.0/mlflow/,
/api/2.0/mlflow-artifacts/ and /api/3.0/mlflow/ (mlflow.utils.rest_utils)."""

from django.urls import path

from experiments.mlflow_compat import views as v
from experiments.mlflow_compat.registry import registry_urlpatterns

tracking_urlpatterns = [
    path("experiments/create", v.CreateExperimentView.as_view()),
    path("experiments/search", v.SearchExperimentsView.as_view()),
    path("experiments/get", v.GetExperimentView.as_view()),
    path("experiments/get-by-name", v.GetExperimentByNameView.as_view()),
    path("experiments/delete", v.DeleteExperimentView.as_view()),
    path("experiments/restore", v.RestoreExperimentView.as_view()),
    path("experiments/update", v.UpdateExperimentView.as_view()),
    path("experiments/set-experiment-tag", v.SetExperimentTagView.as_view()),
    path("experiments/delete-experiment-tag", v.DeleteExperimentTagView.as_view()),
    path("runs/create", v.CreateRunView.as_view()),
    path("runs/update", v.UpdateRunView.as_view()),
    path("runs/delete", v.DeleteRunView.as_view()),
    path("runs/restore", v.RestoreRunView.as_view()),
    path("runs/get", v.GetRunView.as_view()),
    path("runs/search", v.SearchRunsView.as_view()),
    path("runs/log-metric", v.LogMetricView.as_view()),
    path("runs/log-parameter", v.LogParamView.as_view()),
    path("runs/set-tag", v.SetTagView.as_view()),
    path("runs/delete-tag", v.DeleteTagView.as_view()),
    path("runs/log-batch", v.LogBatchView.as_view()),
    path("metrics/get-history", v.GetMetricHistoryView.as_view()),
    path("artifacts/list", v.ListArtifactsView.as_view()),
    path("logged-models/search", v.SearchLoggedModelsView.as_view()),
    *registry_urlpatterns,  # registered-models/..., model-versions/...
    path("<path:rest>", v.MlflowEndpointNotFoundView.as_view()),
]

artifact_urlpatterns = [
    path("artifacts", v.MlflowArtifactListView.as_view()),
    path("artifacts/<path:location>", v.MlflowArtifactView.as_view()),
    path("<path:rest>", v.MlflowEndpointNotFoundView.as_view()),
]

v3_urlpatterns = [
    path("server-info", v.ServerInfoView.as_view()),
    path("<path:rest>", v.MlflowEndpointNotFoundView.as_view()),
]
