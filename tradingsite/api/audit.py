"""GET /api/v1/audit/: the audit log for auditors (tradingsite.view_auditevent; superusers).

Read-only by construction: the view has only `get`, and the model refuses updates and deletes.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tradingsite.api.query import query_data
from tradingsite.models import AuditAction, AuditEvent, AuditOutcome
from tradingsite.pagination import StrictLimitOffsetPagination

VIEW_PERMISSION = "tradingsite.view_auditevent"


class CanViewAudit(BasePermission):
    message = f"the audit log needs the permission {VIEW_PERMISSION}"

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_active and user.has_perm(VIEW_PERMISSION))


class AuditPagination(StrictLimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


class AuditQuerySerializer(serializers.Serializer):
    action = serializers.CharField(
        required=False,
        help_text="comma-separated action names, or `prefix.*` (e.g. `auth.*`)",
    )
    outcome = serializers.ChoiceField(choices=AuditOutcome.choices, required=False)
    actor = serializers.CharField(required=False, max_length=150, help_text="username (exact)")
    target = serializers.CharField(
        required=False,
        max_length=201,
        help_text="`type` or `type:id`, e.g. `registry.modelversion:12`",
    )
    request_id = serializers.CharField(required=False, max_length=128)
    since = serializers.DateTimeField(required=False, help_text="time >= since (ISO 8601)")
    until = serializers.DateTimeField(required=False, help_text="time < until (ISO 8601)")

    def validate_action(self, value: str) -> list[str]:
        names = [name.strip() for name in value.split(",") if name.strip()]
        for name in names:
            prefix = name[:-2] if name.endswith(".*") else None
            known = (
                any(a.startswith(prefix + ".") for a in AuditAction.values)
                if prefix
                else name in AuditAction.values
            )
            if not known:
                raise serializers.ValidationError(
                    f"unknown action {name!r}; actions are {', '.join(AuditAction.values)}"
                )
        return names

    def validate(self, attrs: dict) -> dict:
        if "since" in attrs and "until" in attrs and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "must be after `since`"})
        return attrs


class AuditEventSerializer(serializers.ModelSerializer):
    actor_id = serializers.IntegerField(allow_null=True, read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id", "time", "action", "outcome", "actor_id", "actor_username", "source_ip",
            "request_id", "target_type", "target_id", "target_repr", "details",
        ]  # fmt: skip
        read_only_fields = fields


def audit_events_filter(queryset: QuerySet[AuditEvent], params: dict) -> QuerySet[AuditEvent]:
    """Only the validated, allowlisted filters above reach the ORM."""
    if names := params.get("action"):
        exact = [n for n in names if not n.endswith(".*")]
        prefixes = [n[:-1] for n in names if n.endswith(".*")]  # "auth.*" -> "auth."
        matching = {a for a in AuditAction.values if a in exact or a.startswith(tuple(prefixes))}
        queryset = queryset.filter(action__in=sorted(matching))
    if outcome := params.get("outcome"):
        queryset = queryset.filter(outcome=outcome)
    if actor := params.get("actor"):
        queryset = queryset.filter(actor_username=actor)
    if target := params.get("target"):
        target_type, _, target_id = target.partition(":")
        queryset = queryset.filter(target_type=target_type)
        if target_id:
            queryset = queryset.filter(target_id=target_id)
    if request_id := params.get("request_id"):
        queryset = queryset.filter(request_id=request_id)
    if since := params.get("since"):
        queryset = queryset.filter(time__gte=since)
    if until := params.get("until"):
        queryset = queryset.filter(time__lt=until)
    return queryset


class AuditEventListView(ListAPIView):
    """The audit log, newest first: logins, token revocations, promotion attempts (refused and
    lost ones included), admin changes, scan triggers. Needs tradingsite.view_auditevent."""

    permission_classes = [IsAuthenticated, CanViewAudit]
    serializer_class = AuditEventSerializer
    pagination_class = AuditPagination

    def get_queryset(self) -> QuerySet[AuditEvent]:
        query = AuditQuerySerializer(data=query_data(self.request))
        query.is_valid(raise_exception=True)
        return audit_events_filter(AuditEvent.objects.order_by("-id"), query.validated_data)

    @extend_schema(
        parameters=[AuditQuerySerializer],
        responses={
            200: AuditEventSerializer(many=True),
            400: OpenApiResponse(description="a filter is invalid"),
            403: OpenApiResponse(description="needs tradingsite.view_auditevent"),
        },
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)
