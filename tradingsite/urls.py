from django.contrib import admin
from django.urls import include, path

from tradingsite.api.views import health_live
from tradingsite.views import home

urlpatterns = [
    path("health", health_live, name="health"),
    path("health/", health_live),
    path("api/v1/", include("tradingsite.api.urls")),
    path("admin/", admin.site.urls),
    path("", include("django_prometheus.urls")),  # GET /metrics
    path("", home, name="home"),
]
