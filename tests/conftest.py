"""Suite-wide fixtures. Tests of PostgreSQL/Redis behaviour carry the `postgres` / `redis` marks
and run against the real servers named by DATABASE_URL / REDIS_URL (make test's second pass)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from features.store import feature_view_cache_clear
from tradingsite.security.authdb import auth_connection
from tradingsite.security.breakers import reset_breakers

PASSWORD = "correct-Horse-battery-9"


# pytest-django's fixtures that open the test database (a `django_db` mark does too)
DATABASE_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
     "live_server"}
)  # fmt: skip


def uses_database(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return item.get_closest_marker("django_db") is not None or bool(DATABASE_FIXTURES & fixtures)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make test` runs the suite twice: embedded (SQLite, in-process cache), then against the
    PostgreSQL and Redis named by DATABASE_URL / REDIS_URL. A test that opens neither the test
    database nor carries a `postgres`/`redis` mark (pure computations, and the e2e tests that
    start their own processes with an environment they build themselves) does the same thing in
    both passes, so it runs in the first only. A test that exercises Redis without the database
    says so with the `redis` mark."""
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    second_pass = on_postgres or bool(settings.REDIS_URL)
    for item in items:
        if (
            second_pass
            and not uses_database(item)
            and not {"postgres", "redis"} & set(item.keywords)
        ):
            item.add_marker(
                pytest.mark.skip(
                    reason="uses neither the database nor Redis: ran in the embedded pass"
                )
            )
            continue
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(
                pytest.mark.skip(reason="needs PostgreSQL: runs in make test's DATABASE_URL pass")
            )
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(
                pytest.mark.skip(reason="needs Redis: runs in make test's REDIS_URL pass")
            )


@pytest.fixture(autouse=True)
def _fresh_shared_state() -> Iterator[None]:
    """Rate-limit counters, breaker state and resolved feature views (whose rows a test's
    rollback removes) must not leak from one test into the next."""
    cache.clear()
    reset_breakers()
    feature_view_cache_clear()
    yield
    reset_breakers()


@pytest.fixture(autouse=True, scope="session")
def _auth_connection_closed_before_teardown(django_db_setup: None) -> Iterator[None]:
    """The token check's own connection (tradingsite.security.authdb) must be gone before
    pytest-django drops the test database."""
    yield
    auth_connection.close()


@pytest.fixture(autouse=True, scope="session")
def _celery_runs_tasks_inline() -> None:
    """Tasks enqueued by services run in the test process (the e2e tests run real workers)."""
    from tradingsite.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def password() -> str:
    return PASSWORD


def user_in_roles(django_user_model: Any, username: str, *groups: str) -> Any:
    """A new user in the named role groups (tradingsite.dashboard.roles), read back so that no
    permission cache predates the groups."""
    from django.contrib.auth.models import Group

    from tradingsite.dashboard.roles import roles_ensure

    roles_ensure()  # a transactional test's flush may have removed the groups
    user = django_user_model.objects.create_user(username, password=PASSWORD)
    user.groups.add(*Group.objects.filter(name__in=groups))
    assert user.groups.count() == len(groups)
    return django_user_model.objects.get(pk=user.pk)


@pytest.fixture
def user(django_user_model: Any) -> Any:
    """The suite's writing client: a researcher (experiment tracking) and a data engineer
    (market bars, materializations). Its username predates the roles; it is no analyst."""
    from tradingsite.dashboard.roles import DATA_ENGINEER_GROUP, RESEARCHER_GROUP

    return user_in_roles(django_user_model, "analyst", RESEARCHER_GROUP, DATA_ENGINEER_GROUP)


@pytest.fixture
def analyst_user(django_user_model: Any) -> Any:
    """A user with the read-only analyst role only."""
    from tradingsite.dashboard.roles import ANALYST_GROUP

    return user_in_roles(django_user_model, "reader", ANALYST_GROUP)


@pytest.fixture
def tokens(user: Any) -> dict[str, str]:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def api_client(tokens: dict[str, str]) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client
