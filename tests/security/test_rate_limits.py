"""T12 (reliability.md §4): login bursts against the limiter (tradingsite.security.ratelimit).

Each test opens the database, so it runs twice: embedded (the in-process cache, whose add/incr
hold a lock) and in make test's second pass against the real Redis (SET NX + INCR, pipelined).
tests/tradingsite/test_ratelimit.py covers the sequential behaviour; here the requests race.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from tests.support import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)
LOGIN = "/api/v1/auth/token/"
BURST = 50


@pytest.fixture(autouse=True)
def _one_login_view_at_a_time_on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's in-memory test database refuses concurrent writers outright ("table is
    locked"), which a login is (last_login, the audit row). There the view runs one at a time;
    the limiter, a middleware in front of it, still races freely. PostgreSQL: no lock."""
    if connection.vendor != "sqlite":
        return
    from tradingsite.api.views import TokenObtainView

    view_lock = threading.Lock()
    post = TokenObtainView.post

    def serialized(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        with view_lock:
            return post(self, request, *args, **kwargs)

    monkeypatch.setattr(TokenObtainView, "post", serialized)


@pytest.fixture
def account(django_user_model: Any, password: str) -> dict[str, str]:
    django_user_model.objects.create_user("trader", password=password)
    return {"username": "trader", "password": password}


def _login(credentials: dict[str, str], **headers: str) -> Any:
    return Client().post(LOGIN, credentials, content_type="application/json", **headers)


def _burst(credentials: dict[str, str], headers_of: Any) -> list[Any]:
    responses: list[Any] = []
    lock = threading.Lock()
    counter = iter(range(BURST))

    def one() -> None:
        with lock:
            i = next(counter)
        response = _login(credentials, **headers_of(i))
        with lock:
            responses.append(response)

    run_concurrently(one, BURST)
    return responses


def _assert_limited(responses: list[Any], limit: int) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert len(responses) == BURST
    assert not [s for s in statuses if s >= 500], statuses
    processed = [r for r in responses if r.status_code != 429]
    assert len(processed) <= limit, statuses
    assert {r.status_code for r in processed} <= {200}, statuses
    for response in responses:
        if response.status_code == 429:
            assert 1 <= int(response["Retry-After"]) <= 60, response["Retry-After"]
            assert response.json()["code"] == "rate_limited"


def test_fifty_concurrent_logins_against_five_a_minute_process_at_most_five(
    account: dict[str, str], settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "5/60"}
    responses = _burst(account, lambda i: {"REMOTE_ADDR": "192.0.2.10"})
    _assert_limited(responses, limit=5)


def test_rotating_forwarded_for_gives_no_extra_allowance_by_default(
    account: dict[str, str], settings: Any
) -> None:
    assert django_settings.NUM_PROXIES == 0  # the default: nothing in front is trusted
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "5/60"}
    responses = _burst(
        account,
        lambda i: {"REMOTE_ADDR": "192.0.2.11", "HTTP_X_FORWARDED_FOR": f"198.51.100.{i}"},
    )
    _assert_limited(responses, limit=5)


def test_after_retry_after_the_next_login_succeeds(account: dict[str, str], settings: Any) -> None:
    window = 2
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": f"2/{window}"}
    for attempt in range(5):
        # a fresh client per attempt, so its window starts at its first login; an attempt
        # slower than the window (a busy machine) proves nothing and is made again
        client_ip = {"REMOTE_ADDR": f"192.0.2.{12 + attempt}"}
        started = time.monotonic()
        statuses = [_login(account, **client_ip).status_code for _ in range(2)]
        refused = _login(account, **client_ip)
        if time.monotonic() - started < window:
            break
    else:
        pytest.skip(f"no three logins within {window} s on this machine")
    assert statuses == [200, 200]
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= window
    time.sleep(wait)
    assert _login(account, **client_ip).status_code == 200
