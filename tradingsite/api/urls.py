from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from experiments.api import tokens as api_tokens
from features.api import feature_views as fv
from tradingsite.api import audit, views

urlpatterns = [
    path("auth/token/", views.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh/", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/token/revoke/", views.TokenRevokeView.as_view(), name="auth-token-revoke"),
    path("auth/api-tokens/", api_tokens.ApiTokenListView.as_view(), name="api-tokens"),
    path("auth/api-tokens/<int:pk>", api_tokens.ApiTokenRevokeView.as_view(), name="api-token"),
    path("audit/", audit.AuditEventListView.as_view(), name="audit-events"),
    path("health", views.HealthMatrixView.as_view(), name="api-health"),
    path("events", views.EventListView.as_view(), name="events"),
    path("ml/status", views.MlStatusView.as_view(), name="ml-status"),
    path("market/", include("features.api.urls")),
    path("features/", fv.FeatureListView.as_view(), name="features"),
    path("feature-views/", fv.FeatureViewListView.as_view(), name="feature-views"),
    path("feature-views/<str:name>", fv.FeatureViewDetailView.as_view(), name="feature-view"),
    path(
        "feature-views/<str:name>/materialize",
        fv.FeatureViewMaterializeView.as_view(),
        name="feature-view-materialize",
    ),
    path("feature-views/<str:name>/online", fv.FeatureViewOnlineView.as_view(), name="online"),
    path(
        "feature-views/<str:name>/historical",
        fv.FeatureViewHistoricalView.as_view(),
        name="feature-view-historical",
    ),
    path(
        "materialization-jobs/<int:pk>",
        fv.MaterializationJobDetailView.as_view(),
        name="materialization-job",
    ),
    path("models/", include("registry.api.urls")),
    path("drift/", include("drift.api.urls")),
    path("", include("experiments.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
