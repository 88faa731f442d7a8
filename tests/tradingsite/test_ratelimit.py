"""Rate limiting happens before authentication, per client and route class, and really limits."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings

from tests.support import run_concurrently
from tradingsite.security.ratelimit import Rate, rate_limit_hit

pytestmark = pytest.mark.django_db
LOGIN = "/api/v1/auth/token/"


def _login(client: Client, **headers: str) -> int:
    body = '{"username": "nobody", "password": "wrong"}'
    return client.post(LOGIN, body, content_type="application/json", **headers).status_code


def test_rates_parse_as_count_per_seconds() -> None:
    assert Rate.parse("10/60") == Rate(10, 60)
    with pytest.raises(ValueError, match="positive"):
        Rate.parse("0/60")


def test_the_window_resets_after_its_length() -> None:
    rate = Rate(2, 60)
    assert [rate_limit_hit(bucket="b", rate=rate, now=120.0)[0] for _ in range(3)] == [
        True,
        True,
        False,
    ]
    allowed, _ = rate_limit_hit(bucket="b", rate=rate, now=180.5)
    assert allowed


def test_login_attempts_beyond_the_limit_get_429_with_retry_after(settings: Any) -> None:
    settings.RATE_LIMITS = {"auth": "3/60", "api": "1000/60"}
    client = Client()
    statuses = [_login(client) for _ in range(3)]
    assert statuses == [401, 401, 401]  # limited before auth: bad credentials still count
    response = client.post(LOGIN, "{}", content_type="application/json")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["code"] == "rate_limited"


def test_api_reads_are_limited_even_without_a_token(settings: Any) -> None:
    settings.RATE_LIMITS = {"auth": "100/60", "api": "5/60"}
    client = Client()
    statuses = [client.get("/api/v1/ml/status").status_code for _ in range(7)]
    assert statuses == [401] * 5 + [429] * 2


def test_health_and_metrics_are_never_limited(settings: Any) -> None:
    settings.RATE_LIMITS = {"auth": "1/60", "api": "1/60"}
    client = Client()
    assert {client.get("/health").status_code for _ in range(5)} == {200}


def test_a_spoofed_forwarded_for_gives_no_extra_allowance(settings: Any) -> None:
    settings.RATE_LIMITS = {"auth": "2/60", "api": "1000/60"}
    settings.NUM_PROXIES = 0  # nothing in front: X-Forwarded-For is the client's own words
    client = Client()
    statuses = [_login(client, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}") for i in range(4)]
    assert statuses == [401, 401, 429, 429]


def test_behind_one_proxy_each_real_client_has_its_own_bucket(settings: Any) -> None:
    settings.RATE_LIMITS = {"auth": "1/60", "api": "1000/60"}
    settings.NUM_PROXIES = 1
    client = Client()
    # The proxy appends the address it saw; what the client put before it is ignored.
    assert _login(client, HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.7") == 401
    assert _login(client, HTTP_X_FORWARDED_FOR="2.2.2.2, 203.0.113.7") == 429
    assert _login(client, HTTP_X_FORWARDED_FOR="203.0.113.8") == 401


@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
        }
    }
)
def test_an_unreachable_cache_falls_back_to_an_in_process_limit(settings: Any) -> None:
    settings.RATE_LIMITS = {"auth": "2/60", "api": "1000/60"}
    client = Client()
    assert [_login(client, REMOTE_ADDR="198.51.100.9") for _ in range(3)] == [401, 401, 429]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_concurrent_logins_cannot_exceed_the_limit_on_redis(settings: Any) -> None:
    settings.RATE_LIMITS = {"auth": "5/60", "api": "1000/60"}
    settings.LOGIN_LOCKOUT_FAILURES = 100  # the IP limit is under test, not the account lockout
    statuses: list[int] = []
    run_concurrently(lambda: statuses.append(_login(Client(), REMOTE_ADDR="192.0.2.50")), 30)
    assert statuses.count(429) == 25
    assert statuses.count(401) == 5


def test_tracking_calls_have_their_own_budget(settings: Any) -> None:
    """MLflow's client logs a metric per call: /api/2.0/ does not eat the API budget."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": "2/60", "tracking": "3/60"}
    client = Client()
    tracking = [client.get("/api/2.0/mlflow/experiments/search").status_code for _ in range(4)]
    assert tracking[-1] == 429 and 429 not in tracking[:3]
    assert client.get("/api/v1/ml/status").status_code == 401  # the API bucket is untouched
