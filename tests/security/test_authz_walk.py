"""The authorization walk (reliability.md T3): every route of the URL resolver, every method
it serves, asked anonymously and as an analyst (the read-only role).

- Anonymous: every API operation answers 401, every page redirects to a login page, except the
  allow-list ANONYMOUS_ALLOWED below.
- Analyst: every mutating API operation answers 403 (refused before any lookup, so a missing
  object cannot mask a hole as a 404), except ANALYST_MAY_CALL.
- Every /api/ operation is described in the OpenAPI schema (routes with no schema entry = 0).

A new route is covered as soon as it is added: the walk reads the resolver, not a list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.test import APIClient

from tradingsite.dashboard.roles import ANALYST_GROUP, roles_ensure

pytestmark = pytest.mark.django_db
MUTATING = ("POST", "PUT", "PATCH", "DELETE")

# Routes anonymous visitors may use, each with the reason. (Static files are served by
# WhiteNoise before URL resolution and are not routes.)
ANONYMOUS_ALLOWED = {
    "health": "liveness probe for the load balancer: no I/O, nothing secret",
    "health/": "the same probe with a trailing slash",
    "api/v1/auth/token/": "obtaining a token is how one authenticates",
    "api/v1/auth/token/refresh/": "the refresh token in the body is the credential",
    "admin/login/": "the admin's login page (rate limited, audited)",
    "admin/logout/": "logging out without a session changes nothing",
    "dashboard/login/": "the dashboards' login page (rate limited, audited)",
    "dashboard/logout/": "logging out without a session changes nothing",
    # The OpenAPI schema and its docs pages need a login (SPECTACULAR_SETTINGS).
}
# Routes that answer strangers with a 404, as if absent: /metrics serves only the scraper
# (METRICS_ALLOWED_IPS, loopback by default, or METRICS_TOKEN; reliability.md T15). The walk's
# anonymous client therefore calls from an address outside every default allow-list.
HIDDEN_FROM_STRANGERS = {"metrics"}
STRANGER = "203.0.113.9"

# Mutating API operations an analyst may call, each with the reason: their own credentials,
# and POSTs that only read.
ANALYST_MAY_CALL = {
    ("api/v1/auth/token/", "POST"): "log in",
    ("api/v1/auth/token/refresh/", "POST"): "refresh one's own token",
    ("api/v1/auth/token/revoke/", "POST"): "log out (revoke one's own tokens)",
    ("api/v1/auth/api-tokens/", "POST"): "create one's own personal API token",
    ("api/v1/auth/api-tokens/<int:pk>", "DELETE"): "revoke one's own personal API token",
    ("api/v1/feature-views/<str:name>/historical", "POST"): "a read: point-in-time training set",
    ("api/v1/models/<str:name>/predict", "POST"): "a read: serves the Production model",
    ("api/2.0/mlflow/experiments/search", "POST"): "MLflow reads with POST",
    ("api/2.0/mlflow/runs/search", "POST"): "MLflow reads with POST",
    ("api/2.0/mlflow/registered-models/search", "POST"): "MLflow reads with POST",
    ("api/2.0/mlflow/model-versions/search", "POST"): "MLflow reads with POST",
    ("api/2.0/mlflow/logged-models/search", "POST"): "MLflow reads with POST",
    ("api/2.0/mlflow/registered-models/get-latest-versions", "POST"): "MLflow reads with POST",
}

# Routes that are no operation: MLflow-shaped 404s for unknown MLflow endpoints (any method).
# They are refused to anonymous visitors like the rest, but describe nothing to a schema.
NOT_OPERATIONS = {
    "api/2.0/mlflow/<path:rest>",
    "api/2.0/mlflow-artifacts/<path:rest>",
    "api/3.0/mlflow/<path:rest>",
}
# The schema and its two viewers are not described in the schema itself.
SCHEMA_EXEMPT = NOT_OPERATIONS | {"api/v1/schema/", "api/v1/docs/", "api/v1/redoc/"}

# Samples for the path converters and for the few regex routes (the admin's).
CONVERTER_SAMPLES = {"int": "1", "str": "sample", "path": "sample/file.txt", "slug": "sample"}
REGEX_SAMPLES = {
    "admin/^(?P<app_label>": "admin/auth/",
    "admin/(?P<url>.*)$": "admin/no-such-page/",
}


@dataclass(frozen=True)
class Route:
    route: str  # the pattern as written, e.g. "api/v1/models/<str:name>"
    url: str  # a concrete URL that resolves to it
    callback: Any
    methods: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")


def _patterns(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _sample_url(route: str) -> str:
    for start, sample in REGEX_SAMPLES.items():
        if route.startswith(start):
            return "/" + sample
    assert "(?P<" not in route and "^" not in route, f"add a sample for the regex {route!r}"
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: CONVERTER_SAMPLES[m[1] or "str"], route)


def _methods(callback: Any) -> tuple[str, ...]:
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:  # a function view (admin, dashboards): it may serve either
        return ("GET", "POST")
    return tuple(
        m.upper()
        for m in view.http_method_names
        if m not in ("head", "options") and hasattr(view, m)
    )


def routes() -> list[Route]:
    found = []
    for route, pattern in _patterns(get_resolver()):
        url = _sample_url(route)
        assert resolve(url).func is pattern.callback, f"{url} does not reach {route}"
        found.append(Route(route, url, pattern.callback, _methods(pattern.callback)))
    return found


ROUTES = routes()


def _call(client: Client, method: str, url: str) -> Any:
    return client.generic(method, url, b"{}", content_type="application/json")


def test_the_walk_sees_every_area_of_the_site() -> None:
    prefixes = {
        r.route.split("/")[0] + "/" + r.route.split("/")[1] for r in ROUTES if "/" in r.route
    }
    assert {"api/v1", "api/2.0", "api/3.0", "admin/auth", "dashboard/models"} <= prefixes
    assert len(ROUTES) > 150
    known = {r.route for r in ROUTES}
    listed = {route for route, _ in ANALYST_MAY_CALL}
    stale = (set(ANONYMOUS_ALLOWED) | listed | SCHEMA_EXEMPT | HIDDEN_FROM_STRANGERS) - known
    assert not stale, f"allow-list entries for routes that no longer exist: {stale}"


def test_anonymous_visitors_are_refused_everywhere_but_the_allow_list() -> None:
    holes = []
    client = Client(REMOTE_ADDR=STRANGER)
    for route in ROUTES:
        if route.route in ANONYMOUS_ALLOWED:
            continue
        for method in route.methods:
            response = _call(client, method, route.url)
            if route.route in HIDDEN_FROM_STRANGERS:
                # GET (the scrape) must look absent; other methods are not served at all
                refused = response.status_code in ((404,) if method == "GET" else (404, 405))
            elif route.is_api:
                refused = response.status_code == 401
            else:
                location = response.get("Location", "")
                refused = response.status_code == 302 and "/login/" in location
            if not refused:
                holes.append(f"{method} {route.route} -> {response.status_code}")
    assert not holes, "\n".join(holes)


@pytest.fixture
def analyst(django_user_model: Any, password: str) -> APIClient:
    roles_ensure()
    user = django_user_model.objects.create_user("walker", password=password)
    user.groups.add(Group.objects.get(name=ANALYST_GROUP))
    client = APIClient()
    client.force_authenticate(type(user).objects.get(pk=user.pk))
    return client


def test_an_analyst_is_refused_every_mutating_api_operation(analyst: APIClient) -> None:
    holes, refused = [], 0
    for route in ROUTES:
        if not route.is_api or route.route in NOT_OPERATIONS:
            continue
        for method in route.methods:
            if method not in MUTATING or (route.route, method) in ANALYST_MAY_CALL:
                continue
            response = _call(analyst, method, route.url)
            if response.status_code == 403:
                refused += 1
            else:
                holes.append(f"{method} {route.route} -> {response.status_code}")
    assert not holes, "\n".join(holes)
    assert refused >= 40  # the walk reached the writes (45 when written)


def test_every_api_operation_is_in_the_openapi_schema() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    missing = []
    for route in ROUTES:
        if not route.is_api or route.route in SCHEMA_EXEMPT:
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.route)
        path = path.replace("{pk}", "{id}")  # drf-spectacular's SCHEMA_COERCE_PATH_PK
        for method in route.methods:
            if method.lower() not in schema["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing, "\n".join(missing)
