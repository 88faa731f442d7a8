"""T10 (reliability.md §4): forged, stale and revoked JWTs against the native API, the MLflow API
and the websocket handshake. Every refusal is the same fast 401 with `WWW-Authenticate` and one
generic body, so a caller probing tokens learns nothing about which check failed.

tests/tradingsite/test_auth.py covers the token lifecycle (status codes only); here each attack
is checked for the shape of the refusal, on every authenticated surface.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from tests.support import run_concurrently
from tradingsite.routing import websocket_urlpatterns
from tradingsite.security.websocket import stream_edge

GENERIC = {"detail": "Token is invalid or expired", "code": "token_not_valid"}
NATIVE = "/api/v1/ml/status"
MLFLOW = "/api/2.0/mlflow/experiments/search"
REFRESH = "/api/v1/auth/token/refresh/"
# reliability.md asks <50 ms on the server; the test client on a shared CI core gets slack.
FAST_SECONDS = 0.25

Tokens = dict[str, str]


@pytest.fixture
def victim(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_user("victim", password=password)


@pytest.fixture
def admin(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_superuser("boss", "boss@example.com", password)


@pytest.fixture
def pair(victim: Any, password: str, settings: Any) -> Tokens:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "1000/60", "api": "1000/60"}
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "victim", "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(token: str, alg: str) -> str:
    """`alg: none` (any spelling) with an empty signature, built by hand: PyJWT refuses to."""
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(_claims(token))}."


def _rs256_by_attacker(token: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(_claims(token), key, algorithm="RS256")


def _header_says_rs256_but_hmac_signed(token: str) -> str:
    """Algorithm confusion: the header claims RS256, the signature is HMAC with our secret."""
    header, payload = _b64({"alg": "RS256", "typ": "JWT"}), _b64(_claims(token))
    signing_input = f"{header}.{payload}".encode()
    import hashlib
    import hmac

    mac = hmac.new(settings.JWT_SECRET.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _edited_payload(token: str, user_id: int) -> str:
    """Another user's id in the payload, the original signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{_b64({**_claims(token), 'user_id': str(user_id)})}.{signature}"


def _expired_a_second_ago(token: str) -> str:
    claims = {**_claims(token), "exp": int(time.time()) - 1}
    return jwt.encode(claims, settings.JWT_SECRET, algorithm="HS256")


# Each builder gets the victim's token pair and an admin's id; returns the token to present.
FORGERIES: dict[str, Callable[[Tokens, int], str]] = {
    "alg-none": lambda t, _: _unsigned(t["access"], "none"),
    "alg-None": lambda t, _: _unsigned(t["access"], "None"),
    "alg-NONE": lambda t, _: _unsigned(t["access"], "NONE"),
    "hs256-wrong-key": lambda t, _: jwt.encode(_claims(t["access"]), "x" * 64, algorithm="HS256"),
    "hs512-right-key": lambda t, _: jwt.encode(
        _claims(t["access"]), settings.JWT_SECRET, algorithm="HS512"
    ),
    "rs256-attacker-key": lambda t, _: _rs256_by_attacker(t["access"]),
    "rs256-header-hmac-signature": lambda t, _: _header_says_rs256_but_hmac_signed(t["access"]),
    "payload-edited-signature-kept": lambda t, admin_id: _edited_payload(t["access"], admin_id),
    "expired-now-minus-1": lambda t, _: _expired_a_second_ago(t["access"]),
    "refresh-as-access": lambda t, _: t["refresh"],
    "garbage": lambda t, _: "not.a.jwt",
    "oversized": lambda t, _: "A" * 8000,
}


def _assert_generic_401(response: Any, elapsed: float) -> None:
    assert response.status_code == 401, (response.status_code, response.content[:300])
    assert response["WWW-Authenticate"].startswith("Bearer"), response.headers
    assert elapsed < FAST_SECONDS, elapsed


def _get(client: APIClient, path: str, token: str) -> tuple[Any, float]:
    """GET the native route; POST {} to MLflow's search (a POST in MLflow's protocol)."""
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    started = time.perf_counter()
    response = client.post(path, {}, format="json") if path == MLFLOW else client.get(path)
    return response, time.perf_counter() - started


def _native_refusal(token: str) -> dict[str, Any]:
    response, elapsed = _get(APIClient(), NATIVE, token)
    _assert_generic_401(response, elapsed)
    return response.json()


def _mlflow_refusal(token: str) -> dict[str, Any]:
    response, elapsed = _get(APIClient(), MLFLOW, token)
    _assert_generic_401(response, elapsed)
    return response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("attack", sorted(FORGERIES))
def test_a_forged_or_stale_token_gets_the_generic_401(
    attack: str, pair: Tokens, admin: Any
) -> None:
    client = APIClient()
    assert _get(client, NATIVE, pair["access"])[0].status_code == 200  # warm, and the key works
    token = FORGERIES[attack](pair, admin.pk)
    assert _native_refusal(token) == GENERIC


@pytest.mark.django_db
@pytest.mark.parametrize("attack", sorted(FORGERIES))
def test_the_mlflow_api_refuses_the_same_tokens_in_its_own_shape(
    attack: str, pair: Tokens, admin: Any
) -> None:
    assert _get(APIClient(), MLFLOW, pair["access"])[0].status_code == 200
    body = _mlflow_refusal(FORGERIES[attack](pair, admin.pk))
    assert body == {"error_code": "UNAUTHENTICATED", "message": GENERIC["detail"]}


@pytest.mark.django_db
def test_a_token_of_a_user_deactivated_afterwards_is_refused_on_the_next_request(
    pair: Tokens, victim: Any
) -> None:
    assert _get(APIClient(), NATIVE, pair["access"])[0].status_code == 200
    victim.is_active = False
    victim.save(update_fields=["is_active"])
    assert _native_refusal(pair["access"]) == GENERIC
    assert _mlflow_refusal(pair["access"])["message"] == GENERIC["detail"]


@pytest.mark.django_db
def test_a_token_of_a_deleted_user_is_refused(pair: Tokens, victim: Any) -> None:
    victim.delete()
    assert _native_refusal(pair["access"]) == GENERIC


@pytest.mark.django_db
def test_an_access_token_revoked_through_the_api_is_refused_everywhere(pair: Tokens) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert client.post("/api/v1/auth/token/revoke/", {}, format="json").status_code == 200
    assert _native_refusal(pair["access"]) == GENERIC
    assert _mlflow_refusal(pair["access"])["message"] == GENERIC["detail"]


def _refresh(raw: str) -> tuple[Any, float]:
    started = time.perf_counter()
    response = APIClient().post(REFRESH, {"refresh": raw}, format="json")
    return response, time.perf_counter() - started


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t, _: _unsigned(t["refresh"], "none"), id="alg-none"),
        pytest.param(
            lambda t, _: jwt.encode(_claims(t["refresh"]), "x" * 64, algorithm="HS256"),
            id="wrong-key",
        ),
        pytest.param(lambda t, _: _expired_a_second_ago(t["refresh"]), id="expired"),
        pytest.param(lambda t, _: t["access"], id="access-as-refresh"),
        pytest.param(lambda t, admin_id: _edited_payload(t["refresh"], admin_id), id="edited"),
    ],
)
def test_the_refresh_endpoint_refuses_forged_refresh_tokens_generically(
    make: Callable[[Tokens, int], str], pair: Tokens, admin: Any
) -> None:
    response, elapsed = _refresh(make(pair, admin.pk))
    _assert_generic_401(response, elapsed)
    assert response.json() == GENERIC


@pytest.mark.django_db
def test_a_consumed_refresh_token_is_refused_generically(pair: Tokens) -> None:
    assert _refresh(pair["refresh"])[0].status_code == 200
    response, elapsed = _refresh(pair["refresh"])
    _assert_generic_401(response, elapsed)
    assert response.json() == GENERIC


@pytest.mark.django_db
def test_a_refresh_token_revoked_at_logout_is_refused_generically(pair: Tokens) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    revoke = client.post("/api/v1/auth/token/revoke/", {"refresh": pair["refresh"]}, format="json")
    assert revoke.json() == {"revoked": ["access", "refresh"]}
    response, elapsed = _refresh(pair["refresh"])
    _assert_generic_401(response, elapsed)
    assert response.json() == GENERIC


@pytest.mark.django_db
def test_the_refresh_of_a_deactivated_user_is_refused_generically(
    pair: Tokens, victim: Any
) -> None:
    victim.is_active = False
    victim.save(update_fields=["is_active"])
    response, elapsed = _refresh(pair["refresh"])
    _assert_generic_401(response, elapsed)
    assert response.json() == GENERIC


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_refreshes_rotate_once_and_the_losers_learn_nothing(
    pair: Tokens,
) -> None:
    responses: list[Any] = []
    run_concurrently(lambda: responses.append(_refresh(pair["refresh"])[0]), 20)
    winners = [r for r in responses if r.status_code == 200]
    losers = [r for r in responses if r.status_code != 200]
    assert len(winners) == 1 and len(losers) == 19, sorted(r.status_code for r in responses)
    for response in losers:
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json() == GENERIC
    jti = _claims(pair["refresh"])["jti"]
    assert BlacklistedToken.objects.filter(token__jti=jti).count() == 1
    assert _refresh(winners[0].json()["refresh"])[0].status_code == 200  # the new one works


# --- the websocket handshake ------------------------------------------------------------------


def _handshake_accepted(token: str) -> bool:
    async def attempt() -> bool:
        application = stream_edge(URLRouter(websocket_urlpatterns))
        communicator = WebsocketCommunicator(application, f"/ws/stream?token={token}")
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    return async_to_sync(attempt)()


@pytest.mark.django_db(transaction=True)
def test_the_websocket_refuses_every_forgery_and_accepts_the_genuine_token(
    pair: Tokens, admin: Any, victim: Any
) -> None:
    assert _handshake_accepted(pair["access"])
    accepted = [
        name for name, make in FORGERIES.items() if _handshake_accepted(make(pair, admin.pk))
    ]
    assert accepted == []
    victim.is_active = False
    victim.save(update_fields=["is_active"])
    assert not _handshake_accepted(pair["access"])
