"""Platform endpoints: health, ML status and the JWT token lifecycle."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import PasswordField, TokenObtainPairSerializer
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.views import TokenObtainPairView

from drift.api.serializers import MonitorSerializer as DriftMonitorSerializer
from tradingsite import audit
from tradingsite.api.parsers import BoundedJSONParser
from tradingsite.api.query import query_data
from tradingsite.events import EventError, events_after, topics_parse
from tradingsite.models import AuditAction, AuditOutcome, Topic
from tradingsite.observability.health import DOWN, OK, service_matrix
from tradingsite.observability.metrics import AUTH_FAILURES, AUTH_TOKENS_ISSUED, TOKENS_REVOKED
from tradingsite.security.breakers import OPEN, breakers_snapshot
from tradingsite.security.jwt import access_token_revoke, refresh_token_revoke, refresh_token_rotate
from tradingsite.selectors import ml_status

VERSION = "1.0.0"


@never_cache
def health_live(request: HttpRequest) -> JsonResponse:
    """Liveness: no I/O, answers while the database is down; shows the circuit breakers."""
    breakers = breakers_snapshot()
    degraded = any(b["state"] == OPEN for b in breakers.values())
    return JsonResponse(
        {
            "status": "degraded" if degraded else "ok",
            "service": "tradingsite",
            "version": VERSION,
            "environment": settings.ENVIRONMENT,
            "time": timezone.now().isoformat(),
            "circuit_breakers": breakers,
        }
    )


class ServiceStatusSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["ok", "degraded", "down"])
    latency_ms = serializers.FloatField()
    backend = serializers.CharField()
    detail = serializers.CharField(allow_blank=True)


class HealthMatrixSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "down"])
    environment = serializers.CharField()
    services = serializers.DictField(child=ServiceStatusSerializer())
    circuit_breakers = serializers.DictField(child=serializers.DictField())


class HealthMatrixView(APIView):
    """Every backing service with its status and latency; 503 only when the database is down."""

    @extend_schema(responses={200: HealthMatrixSerializer, 503: HealthMatrixSerializer})
    def get(self, request: Request) -> Response:
        services = {s.name: s.as_dict() for s in service_matrix()}
        statuses = {s["status"] for s in services.values()}
        overall = (
            DOWN
            if services["database"]["status"] == DOWN
            else (OK if statuses == {OK} else "degraded")
        )
        body = {
            "status": overall,
            "environment": settings.ENVIRONMENT,
            "services": services,
            "circuit_breakers": breakers_snapshot(),
        }
        if overall == DOWN:
            return Response(body, status=503, headers={"Retry-After": "5"})
        return Response(body)


class MlStatusSerializer(serializers.Serializer):
    features = serializers.DictField()
    registry = serializers.DictField()
    drift_monitor = DriftMonitorSerializer()
    experiments = serializers.DictField()


class MlStatusView(APIView):
    """Feature and view counts, drift monitor state, registry and experiment tracker counts."""

    @extend_schema(responses=MlStatusSerializer)
    def get(self, request: Request) -> Response:
        return Response(ml_status())


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


MAX_PASSWORD_LENGTH = 4096  # hashing a megabyte-long password is a denial of service


class BoundedTokenObtainSerializer(TokenObtainPairSerializer):
    """simplejwt's, with the user model's username length and a password length limit: an
    overlong credential is a 400 naming the field, before any user lookup or hashing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name = self.username_field
        limit = get_user_model()._meta.get_field(name).max_length
        self.fields[name] = serializers.CharField(write_only=True, max_length=limit)
        self.fields["password"] = PasswordField(max_length=MAX_PASSWORD_LENGTH)


class TokenObtainView(TokenObtainPairView):
    """Username + password -> access and refresh tokens. A wrong password is audited by the
    user_login_failed signal that authenticate() sends (tradingsite.audit)."""

    serializer_class = BoundedTokenObtainSerializer

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        self.credentials = super().get_serializer(*args, **kwargs)  # its `user`, once valid
        return self.credentials

    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        try:
            response = super().post(request, *args, **kwargs)
        except InvalidToken:
            AUTH_FAILURES.labels(endpoint="token").inc()
            raise
        if response.status_code == 200:
            AUTH_TOKENS_ISSUED.labels(grant="password").inc()
            audit.record(
                AuditAction.LOGIN,
                actor=self.credentials.user,
                request=request,
                details={"method": "jwt", "path": request.path},
            )
        else:
            AUTH_FAILURES.labels(endpoint="token").inc()
        return response


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class TokenRefreshView(APIView):
    """Rotate a refresh token: the old one is consumed atomically, a new pair is returned."""

    permission_classes = [AllowAny]
    authentication_classes: list = []  # the refresh token in the body is the credential

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'  # so a refused refresh is a 401, as on every other route

    @extend_schema(request=RefreshInputSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        body = RefreshInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            pair = refresh_token_rotate(raw_refresh=body.validated_data["refresh"])
        except InvalidToken:
            AUTH_FAILURES.labels(endpoint="refresh").inc()
            # invalid, expired, or already used: a replayed refresh token is a stolen one
            audit.record(
                AuditAction.TOKEN_REFRESH_FAILED, outcome=AuditOutcome.FAILURE, request=request
            )
            raise
        AUTH_TOKENS_ISSUED.labels(grant="refresh").inc()
        return Response(pair)


class RevokeInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(required=False, help_text="also revoke this refresh token")


class RevokeOutputSerializer(serializers.Serializer):
    revoked = serializers.ListField(child=serializers.ChoiceField(choices=["access", "refresh"]))


class TokenRevokeView(APIView):
    """Log out now: revoke the access token of this request and, if given, a refresh token."""

    # A JSON body or none: a malformed multipart body read as an empty form would revoke the
    # calling token instead of being refused (found by tests/security/test_schemathesis.py)
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        request=RevokeInputSerializer,
        responses={
            200: RevokeOutputSerializer,
            400: OpenApiResponse(description="nothing to revoke"),
        },
    )
    def post(self, request: Request) -> Response:
        body = RevokeInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        revoked = []
        if isinstance(request.auth, Token):
            access_token_revoke(token=request.auth, user=request.user)
            revoked.append("access")
        if refresh := body.validated_data.get("refresh"):
            try:
                refresh_token_revoke(raw_refresh=refresh, user=request.user)
            except InvalidToken as exc:  # someone else's, forged or expired
                audit.record(
                    AuditAction.TOKEN_REVOKED,
                    outcome=AuditOutcome.FAILURE,
                    request=request,
                    details={"revoked": revoked, "refused": "refresh", "error": str(exc.detail)},
                )
                raise
            revoked.append("refresh")
        if not revoked:
            return Response(
                {"detail": "Nothing to revoke: send a Bearer token or pass `refresh`."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        for token_type in revoked:
            TOKENS_REVOKED.labels(token_type=token_type).inc()
        jti = str(request.auth.get("jti", "")) if isinstance(request.auth, Token) else ""
        audit.record(
            AuditAction.TOKEN_REVOKED,
            request=request,
            target_type="jwt" if jti else "",
            target_id=jti,
            details={"revoked": revoked},
        )
        return Response({"revoked": revoked})


class EventsQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0, max_value=2**62)
    topic = serializers.CharField(required=False, help_text="comma-separated topics")
    subject = serializers.CharField(required=False, default="", allow_blank=True)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)

    def validate_topic(self, value: str) -> list[str]:
        try:
            return topics_parse(value)
        except EventError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    topic = serializers.CharField()
    type = serializers.CharField()
    subject = serializers.CharField()
    payload = serializers.DictField()
    previous_in_topic = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class EventPageSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    next_after = serializers.IntegerField()
    has_more = serializers.BooleanField()


class EventListView(APIView):
    """The event stream as pages: poll with `after` = the last id you have seen."""

    @extend_schema(parameters=[EventsQuerySerializer], responses=EventPageSerializer)
    def get(self, request: Request) -> Response:
        query = EventsQuerySerializer(data=query_data(request))
        query.is_valid(raise_exception=True)
        params = query.validated_data
        limit = params["limit"]
        rows = events_after(
            after=params["after"],
            topics=params.get("topic") or list(Topic.values),
            subject=params["subject"],
            limit=limit + 1,
        )
        page = rows[:limit]
        return Response(
            {
                "events": [row.to_message() for row in page],
                "next_after": page[-1].id if page else params["after"],
                "has_more": len(rows) > limit,
            }
        )
