"""Account lockout (tradingsite.security.lockout; reliability.md T12 last clause and T15).

LOGIN_LOCKOUT_FAILURES wrong passwords for one username, from anywhere, lock it: every login
path (JWT token endpoint, admin and dashboard forms) then refuses even the correct password with
429 + Retry-After until the cool-off ends or an admin unlocks it. The database is the store,
so the lockout holds while Redis is down.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tradingsite.models import AuditAction, AuditEvent, LoginLockout

LIMIT = 3
TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _lockout_settings(settings: Any) -> None:
    settings.LOGIN_LOCKOUT_FAILURES = LIMIT
    settings.LOGIN_LOCKOUT_WINDOW_SECONDS = 600
    settings.LOGIN_LOCKOUT_SECONDS = 300
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "1000/60"}  # not the IP limit


@pytest.fixture
def user(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_user("trader", password=password)


def token_login(username: str, password: str, *, ip: str = "203.0.113.7") -> Any:
    return APIClient(REMOTE_ADDR=ip).post(
        TOKEN_URL, {"username": username, "password": password}, format="json"
    )


def lock(username: str, *, ips: list[str] | None = None) -> list[Any]:
    ips = ips or ["203.0.113.7"] * LIMIT
    return [token_login(username, f"wrong-{i}", ip=ip) for i, ip in enumerate(ips)]


@pytest.mark.django_db
def test_failures_below_the_limit_do_not_lock_and_a_success_clears_them(
    user: Any, password: str
) -> None:
    assert [r.status_code for r in lock("trader", ips=["203.0.113.7"] * (LIMIT - 1))] == [401] * 2
    assert LoginLockout.objects.get(username="trader").failures == LIMIT - 1
    assert token_login("trader", password).status_code == 200
    assert not LoginLockout.objects.exists()  # the count starts again from zero
    assert [r.status_code for r in lock("trader", ips=["203.0.113.7"] * (LIMIT - 1))] == [401] * 2


@pytest.mark.django_db
def test_the_limit_locks_the_account_and_the_correct_password_is_refused(
    user: Any, password: str
) -> None:
    responses = lock("trader")
    assert [r.status_code for r in responses] == [401] * (LIMIT - 1) + [429]
    locked = responses[-1]
    assert locked.json()["code"] == "account_locked"
    assert 1 <= int(locked["Retry-After"]) <= 300
    assert f"after {LIMIT} failed logins" in locked.json()["detail"]

    refused = token_login("trader", password)
    assert refused.status_code == 429 and "access" not in refused.json()
    assert 1 <= int(refused["Retry-After"]) <= 300
    assert AuditEvent.objects.filter(action=AuditAction.ACCOUNT_LOCKED).count() == 1
    assert not AuditEvent.objects.filter(action=AuditAction.LOGIN).exists()
    last = AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED).order_by("id").last()
    assert last.details["account_locked"] is True
    assert LoginLockout.objects.get(username="trader").failures == LIMIT  # not counted on


@pytest.mark.django_db
def test_a_spray_from_many_addresses_still_locks_the_username(user: Any, password: str) -> None:
    responses = lock("TRADER", ips=[f"198.51.100.{i}" for i in range(1, LIMIT + 1)])
    assert responses[-1].status_code == 429  # case and address do not give new allowances
    assert token_login("trader", password, ip="192.0.2.200").status_code == 429


@pytest.mark.django_db
def test_an_unknown_username_locks_the_same_way(user: Any) -> None:
    known, unknown = lock("trader")[-1], lock("nobody-here")[-1]
    assert (known.status_code, unknown.status_code) == (429, 429)
    assert known.json()["code"] == unknown.json()["code"] == "account_locked"


@pytest.mark.django_db
def test_the_cool_off_ends_the_lockout_and_old_failures_expire(user: Any, password: str) -> None:
    lock("trader")
    LoginLockout.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    assert token_login("trader", password).status_code == 200

    lock("trader", ips=["203.0.113.7"] * (LIMIT - 1))
    LoginLockout.objects.update(window_started_at=timezone.now() - timedelta(seconds=601))
    assert token_login("trader", "wrong-again").status_code == 401  # a new window: 1 failure
    assert LoginLockout.objects.get(username="trader").failures == 1


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/", "/dashboard/login/"])
def test_the_login_forms_are_covered(user: Any, password: str, path: str) -> None:
    client = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [
        client.post(path, {"username": "trader", "password": f"bad-{i}"}).status_code
        for i in range(LIMIT)
    ]
    assert statuses == [200] * (LIMIT - 1) + [429]  # the form again, then the lockout page
    page = client.post(path, {"username": "trader", "password": password})
    assert page.status_code == 429 and int(page["Retry-After"]) >= 1
    assert b"locked" in page.content and "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_lockout_holds_while_redis_is_down(user: Any, password: str, settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
        }
    }
    assert lock("trader")[-1].status_code == 429
    assert token_login("trader", password).status_code == 429


@pytest.mark.django_db
def test_an_admin_unlocks_through_the_audited_action(
    user: Any, password: str, django_user_model: Any
) -> None:
    lock("trader")
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", password)
    client = Client()
    client.force_login(admin)
    row = LoginLockout.objects.get(username="trader")
    response = client.post(
        "/admin/tradingsite/loginlockout/",
        {"action": "unlock_selected", "_selected_action": [row.pk]},
    )
    assert response.status_code == 302
    assert not LoginLockout.objects.exists()
    unlocked = AuditEvent.objects.get(action=AuditAction.ACCOUNT_UNLOCKED)
    assert (unlocked.actor_id, unlocked.target_repr) == (admin.pk, "trader")
    assert token_login("trader", password).status_code == 200


@pytest.mark.django_db
def test_an_analyst_cannot_unlock(user: Any, password: str, django_user_model: Any) -> None:
    lock("trader")
    viewer = django_user_model.objects.create_user("viewer", password=password, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_loginlockout"))
    client = Client()
    client.force_login(viewer)
    row = LoginLockout.objects.get(username="trader")
    listing = client.get("/admin/tradingsite/loginlockout/")
    assert listing.status_code == 200 and b"unlock_selected" not in listing.content
    client.post(
        "/admin/tradingsite/loginlockout/",
        {"action": "unlock_selected", "_selected_action": [row.pk]},
    )
    assert LoginLockout.objects.filter(pk=row.pk, locked_until__isnull=False).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_all_count_and_lock_once(user: Any) -> None:
    barrier = threading.Barrier(12)
    statuses: list[int] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            statuses.append(token_login("trader", f"wrong-{i}", ip=f"198.51.100.{i}").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [401] * (LIMIT - 1) + [429] * (12 - LIMIT + 1)
    assert AuditEvent.objects.filter(action=AuditAction.ACCOUNT_LOCKED).count() == 1
    assert LoginLockout.objects.get(username="trader").failures == LIMIT
