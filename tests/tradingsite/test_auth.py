"""JWT lifecycle: obtain, use, rotate, revoke; deny by default on every API route."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.support import run_concurrently

pytestmark = pytest.mark.django_db

PUBLIC_API_ROUTES = {"/api/v1/auth/token/", "/api/v1/auth/token/refresh/"}


def _api_routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    routes = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes += _api_routes(entry, route)
        elif isinstance(entry, URLPattern) and "<" not in route:
            routes.append("/" + route.lstrip("^").rstrip("$"))
    return [r for r in routes if r.startswith("/api/")]


def test_every_api_route_refuses_anonymous_access() -> None:
    client = APIClient()
    routes = sorted(set(_api_routes(get_resolver())) - PUBLIC_API_ROUTES)
    assert "/api/v1/health" in routes and "/api/v1/ml/status" in routes
    for route in routes:
        response = client.get(route)
        assert response.status_code == 401, (route, response.status_code)
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_login_returns_an_access_and_a_refresh_token(tokens: dict[str, str], user: Any) -> None:
    claims = jwt.decode(tokens["access"], settings.JWT_SECRET, algorithms=["HS256"])
    assert claims["token_type"] == "access"
    assert str(claims["user_id"]) == str(user.pk)


def test_tokens_are_signed_with_jwt_secret_not_secret_key(tokens: dict[str, str]) -> None:
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens["access"], settings.SECRET_KEY, algorithms=["HS256"])


def test_a_wrong_password_gets_401(user: Any) -> None:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": user.username, "password": "nope"}, format="json"
    )
    assert response.status_code == 401


def test_an_access_token_opens_the_api(api_client: APIClient) -> None:
    assert api_client.get("/api/v1/ml/status").status_code == 200


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t[:-3] + ("abc" if t[-3:] != "abc" else "xyz"), id="bad-signature"),
        pytest.param(
            lambda t: jwt.encode(
                jwt.decode(t, options={"verify_signature": False}), "wrong-key-" * 4, "HS256"
            ),
            id="wrong-key",
        ),
        pytest.param(
            lambda t: jwt.encode(
                jwt.decode(t, options={"verify_signature": False}), None, algorithm="none"
            ),
            id="alg-none",
        ),
    ],
)
def test_forged_tokens_are_refused(tokens: dict[str, str], mangle: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {mangle(tokens['access'])}")
    assert client.get("/api/v1/ml/status").status_code == 401


def test_an_expired_token_is_refused(user: Any) -> None:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/ml/status").status_code == 401


def test_a_refresh_token_is_not_an_access_token(tokens: dict[str, str]) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['refresh']}")
    assert client.get("/api/v1/ml/status").status_code == 401


def test_refresh_rotates_and_the_old_refresh_token_dies(tokens: dict[str, str]) -> None:
    client = APIClient()
    first = client.post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert first.status_code == 200
    assert set(first.json()) == {"access", "refresh"}
    again = client.post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert again.status_code == 401
    newer = client.post(
        "/api/v1/auth/token/refresh/", {"refresh": first.json()["refresh"]}, format="json"
    )
    assert newer.status_code == 200


def test_a_deactivated_user_cannot_refresh(tokens: dict[str, str], user: Any) -> None:
    user.is_active = False
    user.save()
    response = APIClient().post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert response.status_code == 401


def test_revoking_kills_the_access_token_on_the_next_request(
    api_client: APIClient, tokens: dict[str, str]
) -> None:
    response = api_client.post(
        "/api/v1/auth/token/revoke/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"revoked": ["access", "refresh"]}
    assert api_client.get("/api/v1/ml/status").status_code == 401
    refreshed = APIClient().post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 401


def test_revoking_someone_elses_refresh_token_is_refused(
    api_client: APIClient, django_user_model: Any, password: str
) -> None:
    django_user_model.objects.create_user("other", password=password)
    other = APIClient().post(
        "/api/v1/auth/token/", {"username": "other", "password": password}, format="json"
    )
    response = api_client.post(
        "/api/v1/auth/token/revoke/", {"refresh": other.json()["refresh"]}, format="json"
    )
    assert response.status_code == 401
    still_valid = APIClient().post(
        "/api/v1/auth/token/refresh/", {"refresh": other.json()["refresh"]}, format="json"
    )
    assert still_valid.status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_refreshes_of_one_token_let_exactly_one_through(
    tokens: dict[str, str], settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "1000/60"}  # not what is tested here
    statuses: list[int] = []

    def refresh() -> None:
        response = APIClient().post(
            "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
        )
        statuses.append(response.status_code)

    run_concurrently(refresh, 20)
    assert sorted(statuses) == [200] + [401] * 19


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_token_check_uses_its_own_connection_and_stays_authoritative(
    api_client: APIClient, tokens: dict[str, str], user: Any
) -> None:
    """Committed data, as in production: the per-process auth connection answers, and a
    revocation or a deactivation committed elsewhere counts on the very next request."""
    from tradingsite.security.authdb import auth_connection

    auth_connection.close()
    assert api_client.get("/api/v1/ml/status").status_code == 200
    assert auth_connection._conn is not None  # the request went through the dedicated path

    user.is_active = False
    user.save()
    assert api_client.get("/api/v1/ml/status").status_code == 401
    user.is_active = True
    user.save()
    assert api_client.get("/api/v1/ml/status").status_code == 200

    revoke = api_client.post(
        "/api/v1/auth/token/revoke/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert revoke.status_code == 200
    assert api_client.get("/api/v1/ml/status").status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_auth_connection_costs_no_request(api_client: APIClient) -> None:
    """PostgreSQL drops the auth connection (a restart, a failover): that request is answered
    through the ORM, and a later one reconnects."""
    from django.db import connection

    from tradingsite.security import authdb

    assert api_client.get("/api/v1/ml/status").status_code == 200
    backend_pid = authdb.auth_connection._conn.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    assert api_client.get("/api/v1/ml/status").status_code == 200
    assert authdb.auth_connection._conn is None  # closed after the error; the ORM answered
    authdb.auth_connection._failed_at = 0.0  # skip the one-second pause before reconnecting
    assert api_client.get("/api/v1/ml/status").status_code == 200
    assert authdb.auth_connection._conn.info.backend_pid != backend_pid
