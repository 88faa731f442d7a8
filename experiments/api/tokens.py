"""Personal API tokens of the logged-in user: list, create (shown once), revoke.

The tokens exist so that MLflow clients and training scripts can authenticate for hours; the
authentication class and the services are in tradingsite/security/api_tokens.py.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tradingsite.api.fields import StringField
from tradingsite.models import ApiToken
from tradingsite.security.api_tokens import api_token_create, api_token_revoke

MAX_EXPIRY_DAYS = 3650


class ApiTokenSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at",
            "active",
        ]  # fmt: skip

    def get_active(self, row: ApiToken) -> bool:
        return row.revoked_at is None and (
            row.expires_at is None or row.expires_at > timezone.now()
        )


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="shown this once; only its hash is stored")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenInputSerializer(serializers.Serializer):
    name = StringField(max_length=100)
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=MAX_EXPIRY_DAYS, required=False, help_text="omit: never expires"
    )


def _password_login_required(request: Request) -> None:
    """A leaked API token must not mint more: token management needs a password login."""
    if isinstance(request.auth, ApiToken):
        raise PermissionDenied("API tokens are managed after a password login, not with a token.")


class ApiTokenListView(APIView):
    """Your personal API tokens (never the tokens themselves); POST creates one, shown once."""

    @extend_schema(responses=ApiTokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        _password_login_required(request)
        rows = ApiToken.objects.filter(user=request.user)
        return Response(ApiTokenSerializer(rows, many=True).data)

    @extend_schema(request=ApiTokenInputSerializer, responses={201: ApiTokenCreatedSerializer})
    def post(self, request: Request) -> Response:
        _password_login_required(request)
        body = ApiTokenInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        days = body.validated_data.get("expires_in_days")
        row, token = api_token_create(
            user=request.user,
            name=body.validated_data["name"],
            expires_at=None if days is None else timezone.now() + timedelta(days=days),
        )
        row.token = token
        return Response(ApiTokenCreatedSerializer(row).data, status=status.HTTP_201_CREATED)


class ApiTokenRevokeView(APIView):
    """Revoke one of your tokens; it is refused from the next request on."""

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        _password_login_required(request)
        row = ApiToken.objects.filter(user=request.user, pk=pk).first()
        if row is None:
            raise NotFound("no such API token")
        api_token_revoke(token=row)
        return Response(status=status.HTTP_204_NO_CONTENT)
