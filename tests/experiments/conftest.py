"""Fixtures of the experiment-tracking tests: an artifact store per test, personal API tokens,
and the official MLflow client pointed at a live tradingsite."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

# Before mlflow is imported anywhere: no usage reports leave this machine.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


@pytest.fixture(autouse=True)
def artifact_root(settings: Any, tmp_path: Path) -> Path:
    """Each test stores artifacts in its own empty folder."""
    root = tmp_path / "artifacts"
    settings.ARTIFACT_ROOT = root
    return root


@pytest.fixture
def api_token(user: Any) -> str:
    from tradingsite.security.api_tokens import api_token_create

    _, token = api_token_create(user=user, name="tests")
    return token


@pytest.fixture
def token_client(api_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    return client


@pytest.fixture
def mlflow_server(
    live_server: Any, api_token: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The URL of a live tradingsite that the `mlflow` module talks to, as a training script
    would with MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN set."""
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.utils import request_utils

    # The client keeps HTTP connections alive; they are closed when the test ends, so no request
    # thread of the live server outlives the test (and the shared SQLite connection with it).
    sessions: list[Any] = []
    cached = request_utils._cached_get_request_session

    def recording_session(*args: Any, **kwargs: Any) -> Any:
        session = cached(*args, **kwargs)
        sessions.append(session)
        return session

    monkeypatch.setattr(request_utils, "_cached_get_request_session", recording_session)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", api_token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a 5xx fails the test at once
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    mlflow.set_tracking_uri(live_server.url)
    yield live_server.url
    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._active_experiment_id = None  # the next test's database has other experiments
    for session in sessions:
        session.close()
    cached.cache_clear()
    gc.collect()  # responses held by exceptions' tracebacks keep their sockets open until then
