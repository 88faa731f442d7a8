"""The drift API under /api/v1/drift/. Reads need a login; an on-demand scan needs the permission
drift.run_scan and is limited per user (DRIFT_SCAN_QUOTA, 429 + Retry-After)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drift import selectors
from drift.api.serializers import (
    DriftErrorSerializer,
    FeatureQuerySerializer,
    HistogramsSerializer,
    MonitorSerializer,
    ReportDetailSerializer,
    ReportQuerySerializer,
    ReportSerializer,
    ScanAcceptedSerializer,
    ScanDetailSerializer,
    ScanRequestSerializer,
    ScanSerializer,
    TimelineQuerySerializer,
    TimelineSerializer,
)
from drift.constants import PREDICTION
from drift.histograms import histogram_chart
from drift.metrics import SCAN_REQUESTS
from drift.models import DriftReport, DriftScan
from tradingsite import audit
from tradingsite.api.query import query_data
from tradingsite.api.schema import bad_request
from tradingsite.models import AuditAction, AuditOutcome
from tradingsite.pagination import StrictLimitOffsetPagination
from tradingsite.security.ratelimit import Rate, rate_limit_hit

RUN_SCAN_PERMISSION = "drift.run_scan"


class DriftPagination(StrictLimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class CanRunScan(BasePermission):
    message = f"this needs the permission {RUN_SCAN_PERMISSION}"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.has_perm(RUN_SCAN_PERMISSION))


class DriftReportListView(generics.ListAPIView):
    """Drift reports, newest window first; filter by model, version, severity, window end time,
    escalation and source."""

    serializer_class = ReportSerializer
    pagination_class = DriftPagination

    @extend_schema(parameters=[ReportQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[DriftReport]:
        if getattr(self, "swagger_fake_view", False):
            return DriftReport.objects.none()
        query = ReportQuerySerializer(data=query_data(self.request))
        query.is_valid(raise_exception=True)
        return selectors.drift_reports(filters=query.to_filter())


def _report(pk: int) -> DriftReport:
    try:
        return selectors.drift_report_detail(pk=pk)
    except DriftReport.DoesNotExist as exc:
        raise Http404(f"no drift report {pk}") from exc


class DriftReportDetailView(APIView):
    """One report with every feature's statistics, its prediction drift (the predicted
    probabilities' statistics, or why they were not computed) and the thresholds it was graded
    with."""

    @extend_schema(responses={200: ReportDetailSerializer, 404: DriftErrorSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return Response(ReportDetailSerializer(_report(pk)).data)


class DriftReportHistogramsView(APIView):
    """Reference vs current histograms of a report's features (all, or `feature=a,b`) and of
    its predicted probabilities (null when prediction drift was not computed)."""

    @extend_schema(
        parameters=[FeatureQuerySerializer],
        responses={200: HistogramsSerializer, 404: DriftErrorSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        query = FeatureQuerySerializer(data=query_data(request))
        query.is_valid(raise_exception=True)
        wanted = set(query.validated_data.get("feature") or [])
        report = _report(pk)
        rows = [row for row in report.features.all() if not wanted or row.name in wanted]
        charts = [
            histogram_chart(name=row.name, severity=row.severity, statistics=row.statistics)
            for row in rows
        ]
        computed = bool(report.prediction_severity and report.prediction_statistics)
        prediction = (
            histogram_chart(
                name=PREDICTION,
                severity=report.prediction_severity,
                statistics=report.prediction_statistics,
            )
            if computed
            else None
        )
        return Response(
            {
                "report_id": pk,
                "features": charts,
                "prediction": prediction,
                "prediction_reason": "" if computed else report.prediction_reason,
            }
        )


class DriftTimelineView(APIView):
    """Per feature, severity and main statistics across a model's reports (oldest first), for
    dashboards to chart."""

    @extend_schema(parameters=[TimelineQuerySerializer], responses=TimelineSerializer)
    def get(self, request: Request) -> Response:
        query = TimelineQuerySerializer(data=query_data(request))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return Response(
            selectors.drift_feature_timeline(
                model=data["model"],
                version=data.get("version"),
                features=data.get("feature"),
                since=data.get("since"),
                until=data.get("until"),
                limit=data["limit"],
            )
        )


class DriftMonitorView(APIView):
    """The drift monitor: interval, models watched, last and next scan, latest reports."""

    @extend_schema(responses=MonitorSerializer)
    def get(self, request: Request) -> Response:
        return Response(selectors.drift_monitor_state())


class DriftScanRequestView(APIView):
    """Scan the Production versions now (all, or one model's): 202 with the scan; follow
    `status_url`. Needs drift.run_scan; at most DRIFT_SCAN_QUOTA scans per user."""

    permission_classes = [IsAuthenticated, CanRunScan]

    @extend_schema(
        request=ScanRequestSerializer,
        responses={
            202: ScanAcceptedSerializer,
            400: bad_request("invalid input: field errors, or `{detail, code}`"),
            403: DriftErrorSerializer,
            404: DriftErrorSerializer,
            409: DriftErrorSerializer,
            429: OpenApiResponse(DriftErrorSerializer, description="quota used; see Retry-After"),
        },
    )
    def post(self, request: Request) -> Response:
        # Imported here: the services load scipy (seconds), which the URLconf (and so every
        # server's first request, /health included) should not wait for.
        from drift.services import DriftScanRequestError, drift_scan_request

        body = ScanRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rate = Rate.parse(settings.DRIFT_SCAN_QUOTA)
        allowed, retry_after = rate_limit_hit(bucket=f"drift-scan:{request.user.pk}", rate=rate)
        scope = {
            "model": body.validated_data["model"],
            "version": body.validated_data.get("version"),
        }
        if not allowed:
            SCAN_REQUESTS.labels(outcome="rate_limited").inc()
            audit.record(
                AuditAction.DRIFT_SCAN_TRIGGERED, outcome=AuditOutcome.RATE_LIMITED,
                request=request, details=scope,
            )  # fmt: skip
            return Response(
                {
                    "detail": f"On-demand drift scans are limited to {rate.limit} per "
                    f"{rate.window_seconds} s per user. Retry in {retry_after} s.",
                    "code": "rate_limited",
                },
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(retry_after)},
            )
        try:
            scan = drift_scan_request(
                requested_by=request.user,
                model_name=body.validated_data["model"],
                version=body.validated_data.get("version"),
            )
        except DriftScanRequestError as exc:
            SCAN_REQUESTS.labels(outcome="refused").inc()
            audit.record(
                AuditAction.DRIFT_SCAN_TRIGGERED, outcome=AuditOutcome.INVALID, request=request,
                details={**scope, "error": str(exc), "code": exc.code},
            )  # fmt: skip
            return Response({"detail": str(exc), "code": exc.code}, status=exc.status_code)
        SCAN_REQUESTS.labels(outcome="accepted").inc()
        audit.record(
            AuditAction.DRIFT_SCAN_TRIGGERED, outcome=AuditOutcome.ACCEPTED, request=request,
            target=scan, details=scope,
        )  # fmt: skip
        scan.refresh_from_db()  # an eager (inline) run may have finished it already
        return Response(
            ScanAcceptedSerializer(scan).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/drift/scans/{scan.pk}"},
        )


class DriftScanListView(generics.ListAPIView):
    """Scans, newest first."""

    serializer_class = ScanSerializer
    pagination_class = DriftPagination

    def get_queryset(self) -> QuerySet[DriftScan]:
        return selectors.drift_scans()


class DriftScanDetailView(APIView):
    """One scan's status and what it did per model version."""

    @extend_schema(responses={200: ScanDetailSerializer, 404: DriftErrorSerializer})
    def get(self, request: Request, pk: int) -> Response:
        try:
            scan = selectors.drift_scan_detail(pk=pk)
        except DriftScan.DoesNotExist as exc:
            raise Http404(f"no drift scan {pk}") from exc
        return Response(ScanDetailSerializer(scan).data)
