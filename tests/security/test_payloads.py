"""T11 (reliability.md §4): oversized and malformed bodies against the write endpoints.

Every (endpoint, payload kind) pair must be refused with a JSON 400/413/415, never a 5xx, and
must leave the tables the endpoint writes exactly as they were. The same table runs on SQLite
and, in make test's DATABASE_URL pass, on PostgreSQL, whose text columns reject NUL outright.
tests/experiments/test_validation.py checks the tracker's validators as pure functions; here
the whole HTTP path is exercised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.conf import settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

BIG_INT = 2**64
WRITTEN_TABLES = [
    "features.Bar",
    "experiments.Experiment",
    "experiments.Run",
    "experiments.Param",
    "experiments.RunTag",
    "experiments.Metric",
    "experiments.LatestMetric",
    "experiments.Artifact",
    "registry.RegisteredModel",
    "registry.ModelVersion",
    "drift.DriftScan",
    "token_blacklist.OutstandingToken",
]


@dataclass
class Target:
    """A write endpoint: its method and URL, a body it accepts, and where each hostile value
    goes (a function of the valid body returning the hostile one)."""

    method: str
    url: str
    body: dict[str, Any]
    nul: Callable[[dict[str, Any]], dict[str, Any]]
    big_int: Callable[[dict[str, Any]], dict[str, Any]]
    overlong: Callable[[dict[str, Any]], dict[str, Any]]
    mlflow: bool = False
    status: dict[str, int] = field(default_factory=dict)  # kind -> status, where not 400


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, **changes}


BAR = {"ts": "2024-01-02T00:00:00Z", "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 10}


def _targets(run_id: str) -> dict[str, Target]:
    return {
        "market-bars": Target(
            "post",
            "/api/v1/market/bars",
            {"symbol": "AAPL", "timeframe": "1d", "bars": [BAR]},
            nul=lambda b: _with(b, symbol="AA\x00PL"),
            big_int=lambda b: _with(b, bars=[{**BAR, "volume": BIG_INT}]),
            overlong=lambda b: _with(b, symbol="A" * 33),
        ),
        "runs-log-batch": Target(
            "post",
            f"/api/v1/runs/{run_id}/log-batch",
            {"params": {"lr": "0.1"}, "metrics": [{"key": "loss", "value": 0.5}], "step": 1},
            nul=lambda b: _with(b, params={"lr": "0.\x001"}),
            big_int=lambda b: _with(b, step=BIG_INT),
            overlong=lambda b: _with(b, params={"lr": "x" * 6001}),
        ),
        "mlflow-log-batch": Target(
            "post",
            "/api/2.0/mlflow/runs/log-batch",
            {
                "run_id": run_id,
                "params": [{"key": "lr", "value": "0.1"}],
                "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 1}],
            },
            nul=lambda b: _with(b, params=[{"key": "lr", "value": "0.\x001"}]),
            big_int=lambda b: _with(
                b, metrics=[{"key": "loss", "value": 0.5, "timestamp": BIG_INT, "step": 1}]
            ),
            overlong=lambda b: _with(b, params=[{"key": "lr", "value": "x" * 6001}]),
            mlflow=True,
            status={"fields-1001-form": 415},
        ),
        "mlflow-model-create": Target(
            "post",
            "/api/2.0/mlflow/registered-models/create",
            {"name": "payload-model", "description": "a model"},
            nul=lambda b: _with(b, description="a\x00model"),
            big_int=lambda b: _with(b, name=BIG_INT),
            overlong=lambda b: _with(b, name="m" * 129),
            mlflow=True,
            status={"fields-1001-form": 415},
        ),
        "drift-scan": Target(
            "post",
            "/api/v1/drift/scan",
            {"model": ""},
            nul=lambda b: _with(b, model="m\x00"),
            big_int=lambda b: _with(b, model="m", version=BIG_INT),
            overlong=lambda b: _with(b, model="m" * 129),
        ),
        "token-obtain": Target(
            "post",
            "/api/v1/auth/token/",
            {"username": "writer", "password": "correct-Horse-battery-9"},
            nul=lambda b: _with(b, username="wri\x00ter"),
            big_int=lambda b: _with(b, username=BIG_INT),
            overlong=lambda b: _with(b, username="w" * 5000),
        ),
    }


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


# payload kind -> (content type, body of the target's valid body)
KINDS: dict[str, Callable[[Target], tuple[str, bytes]]] = {
    "oversized": lambda t: (
        "application/json",
        b'{"x": "' + b"a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE - 8) + b'"}',
    ),
    "invalid-json": lambda t: ("application/json", _json(t.body)[:-1] + b","),
    "nested-10000": lambda t: ("application/json", b"[" * 10_000 + b"]" * 10_000),
    "nested-100-in-a-field": lambda t: (
        "application/json",
        _json(_with(t.body, tags=json.loads("[" * 100 + "]" * 100))),
    ),
    "fields-1001-json": lambda t: (
        "application/json",
        _json(_with(t.body, **{f"f{i}": i for i in range(1001)})),
    ),
    "fields-1001-form": lambda t: (
        "application/x-www-form-urlencoded",
        urlencode({f"f{i}": i for i in range(1001)}).encode(),
    ),
    "nul-in-a-string": lambda t: ("application/json", _json(t.nul(t.body))),
    "int-over-2-63": lambda t: ("application/json", _json(t.big_int(t.body))),
    "string-over-max-length": lambda t: ("application/json", _json(t.overlong(t.body))),
    "wrong-content-type": lambda t: ("text/plain", _json(t.body)),
}
EXPECTED = {"oversized": 413, "wrong-content-type": 415}


def _row_counts() -> dict[str, int]:
    return {label: apps.get_model(label).objects.count() for label in WRITTEN_TABLES}


@pytest.fixture
def writer(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_superuser("writer", "writer@example.com", password)


@pytest.fixture
def client(writer: Any, password: str, settings: Any) -> APIClient:
    settings.RATE_LIMITS = {"auth": "1000/60", "api": "1000/60", "tracking": "1000/60"}
    login = APIClient().post(
        "/api/v1/auth/token/", {"username": "writer", "password": password}, format="json"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
    return client


@pytest.fixture
def run_id(client: APIClient) -> str:
    response = client.post("/api/v1/runs/", {"experiment_name": "payloads"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["run_id"]


def _send(client: APIClient, target: Target, content_type: str, body: bytes) -> Any:
    return getattr(client, target.method)(target.url, body, content_type=content_type)


def _assert_json_error(response: Any, target: Target) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert isinstance(body, dict) and body
    if target.mlflow:
        assert set(body) == {"error_code", "message"}, body
    return body


@pytest.mark.parametrize(
    "endpoint",
    [
        "market-bars", "runs-log-batch", "mlflow-log-batch", "mlflow-model-create",
        "drift-scan", "token-obtain",
    ],
)  # fmt: skip
def test_the_valid_body_of_each_target_is_accepted_and_counted(
    endpoint: str, client: APIClient, run_id: str
) -> None:
    """The baseline the hostile cases are measured against: it writes, and the count sees it."""
    target = _targets(run_id)[endpoint]
    before = _row_counts()
    response = _send(client, target, "application/json", _json(target.body))
    assert response.status_code in (200, 201, 202), response.content
    assert _row_counts() != before


CASES = [
    pytest.param(endpoint, kind, id=f"{endpoint}:{kind}")
    for endpoint in _targets("x")
    for kind in KINDS
]


@pytest.mark.parametrize(("endpoint", "kind"), CASES)
def test_a_hostile_body_is_a_json_4xx_and_writes_nothing(
    endpoint: str, kind: str, client: APIClient, run_id: str
) -> None:
    target = _targets(run_id)[endpoint]
    content_type, body = KINDS[kind](target)
    before = _row_counts()
    response = _send(client, target, content_type, body)
    expected = target.status.get(kind, EXPECTED.get(kind, 400))
    assert response.status_code == expected, (response.status_code, response.content[:300])
    _assert_json_error(response, target)
    assert _row_counts() == before


# --- artifact uploads: the body is the file, the name is the attack --------------------------

TRAVERSALS = [
    "../escape.txt",
    "a/../../escape.txt",
    "%2e%2e/escape.txt",
    "..%2fescape.txt",
    "a/./b.txt",
    "a//b.txt",
    "a\\..\\b.txt",
    "a%00.txt",
    "..",
    "x" * 300,
]


def _artifact_urls(run_id: str, experiment_id: int, name: str) -> dict[str, str]:
    return {
        "native": f"/api/v1/runs/{run_id}/artifacts/{name}",
        "mlflow": f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{name}",
    }


@pytest.fixture
def experiment_id(client: APIClient, run_id: str) -> int:
    return client.get(f"/api/v1/runs/{run_id}").json()["experiment_id"]


@pytest.mark.parametrize("api", ["native", "mlflow"])
@pytest.mark.parametrize("name", TRAVERSALS)
def test_an_artifact_named_outside_its_run_is_refused_before_a_byte_is_stored(
    api: str, name: str, client: APIClient, run_id: str, experiment_id: int, tmp_path: Any
) -> None:
    before = _row_counts()
    url = _artifact_urls(run_id, experiment_id, name)[api]
    response = client.put(url, b"payload", content_type="application/octet-stream")
    assert response.status_code in (400, 404), (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert _row_counts() == before


@pytest.mark.parametrize("api", ["native", "mlflow"])
def test_an_artifact_over_the_upload_limit_is_refused_and_not_kept(
    api: str, client: APIClient, run_id: str, experiment_id: int, settings: Any
) -> None:
    settings.ARTIFACT_MAX_UPLOAD_MB = 1
    url = _artifact_urls(run_id, experiment_id, "model.bin")[api]
    ok = client.put(url, b"x" * 1024, content_type="application/octet-stream")
    assert ok.status_code in (200, 201), ok.content
    before = _row_counts()
    big = client.put(url.replace("model.bin", "big.bin"), b"x" * (1024 * 1024 + 1),
                     content_type="application/octet-stream")  # fmt: skip
    assert big.status_code == (413 if api == "native" else 400), big.content[:300]
    assert big["Content-Type"].startswith("application/json")
    assert _row_counts() == before
