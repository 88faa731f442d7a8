"""Personal API tokens: long-lived bearer credentials for scripts and MLflow clients, stored hashed,
shown once, revocable, refused the request after they are revoked or expire."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from tradingsite.models import ApiToken
from tradingsite.security.api_tokens import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_logged_in_user_creates_a_token_that_is_shown_once_and_stored_hashed(
    api_client: APIClient,
) -> None:
    created = api_client.post(
        "/api/v1/auth/api-tokens/", {"name": "laptop", "expires_in_days": 30}, format="json"
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("ts_") and len(token) >= 40
    row = ApiToken.objects.get()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {row.name, row.prefix, row.token_hash}
    assert token.startswith(row.prefix)
    assert row.expires_at > timezone.now() + timedelta(days=29)
    listed = api_client.get("/api/v1/auth/api-tokens/").json()
    assert [t["name"] for t in listed] == ["laptop"]
    assert "token" not in listed[0] and listed[0]["active"] is True


def test_a_token_opens_the_native_and_the_mlflow_api(api_token: str) -> None:
    client = _bearer(api_token)
    assert client.get("/api/v1/ml/status").status_code == 200
    search = client.post("/api/2.0/mlflow/experiments/search", {}, format="json")
    assert search.status_code == 200 and search.json() == {"experiments": []}
    row = ApiToken.objects.get()
    assert row.last_used_at is not None and row.revoked_at is None
    # Recorded use is not revocation: the token keeps working, and its use is recorded again
    # once the last record is a minute old.
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now() - timedelta(minutes=5))
    assert client.get("/api/v1/ml/status").status_code == 200
    assert client.get("/api/v1/ml/status").status_code == 200
    row.refresh_from_db()
    assert timezone.now() - row.last_used_at < timedelta(minutes=1)
    assert row.revoked_at is None


def test_revoked_expired_and_deactivated_tokens_are_refused_on_the_next_request(
    user: Any, api_client: APIClient
) -> None:
    row, token = api_token_create(user=user, name="ci")
    client = _bearer(token)
    assert client.get("/api/v1/ml/status").status_code == 200
    assert api_client.delete(f"/api/v1/auth/api-tokens/{row.pk}").status_code == 204
    refused = client.get("/api/v1/ml/status")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")

    expiring, token = api_token_create(
        user=user, name="short", expires_at=timezone.now() + timedelta(hours=1)
    )
    client = _bearer(token)
    assert client.get("/api/v1/ml/status").status_code == 200
    ApiToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/ml/status").status_code == 401

    _, token = api_token_create(user=user, name="deactivated")
    user.is_active = False
    user.save()
    assert _bearer(token).get("/api/v1/ml/status").status_code == 401


@pytest.mark.parametrize("token", ["ts_", "ts_notatoken", "ts_" + "x" * 43, "ts_\u00e9"])
def test_forged_tokens_are_refused(token: str) -> None:
    response = APIClient().get(
        "/api/v1/ml/status", HTTP_AUTHORIZATION=f"Bearer {token}".encode().decode("latin-1")
    )
    assert response.status_code == 401


def test_jwt_bearer_tokens_still_go_to_the_jwt_class(tokens: dict[str, str]) -> None:
    assert _bearer(tokens["access"]).get("/api/v1/ml/status").status_code == 200


def test_a_token_cannot_manage_tokens(api_token: str, user: Any) -> None:
    client = _bearer(api_token)
    assert client.get("/api/v1/auth/api-tokens/").status_code == 403
    assert (
        client.post("/api/v1/auth/api-tokens/", {"name": "more"}, format="json").status_code == 403
    )
    assert ApiToken.objects.count() == 1


def test_a_user_cannot_revoke_someone_elses_token(
    api_client: APIClient, django_user_model: Any
) -> None:
    other = django_user_model.objects.create_user("other", password="x" * 16)
    row, token = api_token_create(user=other, name="theirs")
    assert api_client.delete(f"/api/v1/auth/api-tokens/{row.pk}").status_code == 404
    assert _bearer(token).get("/api/v1/ml/status").status_code == 200


def test_the_command_prints_a_working_token_once(user: Any) -> None:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", user.username, "--name", "mlflow", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert _bearer(token).get("/api/v1/ml/status").status_code == 200
    assert "cannot be shown again" in err.getvalue()
    assert token not in err.getvalue()
    call_command("create_api_token", user.username, "--expires-days", "7", stdout=StringIO(),
                 stderr=StringIO())  # fmt: skip
    assert ApiToken.objects.filter(expires_at__isnull=False).count() == 1
    with pytest.raises(CommandError, match="no active user"):
        call_command("create_api_token", "nobody", stdout=StringIO(), stderr=StringIO())


def test_revoking_twice_keeps_the_first_time(user: Any) -> None:
    row, _ = api_token_create(user=user, name="x")
    first = api_token_revoke(token=row).revoked_at
    assert api_token_revoke(token=row).revoked_at == first
