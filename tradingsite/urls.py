from django.contrib import admin
from django.urls import include, path

from experiments.mlflow_compat import urls as mlflow_urls
from tradingsite.api.views import health_live
from tradingsite.observability.exposition import metrics
from tradingsite.views import home

urlpatterns = [
    path("health", health_live, name="health"),
    path("health/", health_live),
    path("api/v1/", include("tradingsite.api.urls")),
    # MLflow's REST API, so MLFLOW_TRACKING_URI can point at this site (experiments.mlflow_compat)
    path("api/2.0/mlflow/", include(mlflow_urls.tracking_urlpatterns)),
    path("api/2.0/mlflow-artifacts/", include(mlflow_urls.artifact_urlpatterns)),
    path("api/3.0/mlflow/", include(mlflow_urls.v3_urlpatterns)),
    path("admin/", admin.site.urls),
    path("dashboard/", include("tradingsite.dashboard.urls")),  # server-rendered dashboards
    path("metrics", metrics, name="metrics"),  # Prometheus; allow-listed peers or a token
    path("", home, name="home"),
]
