from django.urls import path

from drift.api import views

urlpatterns = [
    path("reports", views.DriftReportListView.as_view(), name="drift-reports"),
    path("reports/<int:pk>", views.DriftReportDetailView.as_view(), name="drift-report"),
    path(
        "reports/<int:pk>/histograms",
        views.DriftReportHistogramsView.as_view(),
        name="drift-report-histograms",
    ),
    path("timeline", views.DriftTimelineView.as_view(), name="drift-timeline"),
    path("monitor", views.DriftMonitorView.as_view(), name="drift-monitor"),
    path("scan", views.DriftScanRequestView.as_view(), name="drift-scan"),
    path("scans", views.DriftScanListView.as_view(), name="drift-scans"),
    path("scans/<int:pk>", views.DriftScanDetailView.as_view(), name="drift-scan-detail"),
]
