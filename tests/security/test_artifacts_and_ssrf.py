"""reliability.md T14 over HTTP: the whole MLflow traversal corpus against both artifact APIs,
with the temporary tree snapshotted around each attempt (`find -newer`), and webhook SSRF
targets refused when configured (`manage.py check`), with no connection attempted.

A pickle whose __reduce__ touches a canary, uploaded as a run's model over HTTP, is refused at
registration as an unsupported format, with the canary absent (below).

Covered elsewhere, not repeated here: the corpus against the pure name check
(tests/experiments/test_validation.py); a pickle that bypassed registration's check (a version
registered before it existed), promoted and then refused by serving with the canary absent
(tests/registry/test_predict.py::test_a_pickle_that_bypassed_registration_is_never_loaded); an
artifact whose
bytes no longer match its sha256 refused at promotion (tests/registry/test_transitions.py::
test_integrity_and_permission_rules_cannot_be_overridden) and at serving with 409
(tests/registry/test_predict.py::test_a_tampered_artifact_is_refused_logged_and_never_cached);
webhook SSRF refused at delivery (tests/drift/test_webhooks.py).
"""

from __future__ import annotations

import os
import pickle
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.checks import run_checks
from rest_framework.test import APIClient

from experiments.models import Artifact
from experiments.train import MODEL_ARTIFACT
from registry.models import ModelVersion, RegisteredModel
from tests.registry.conftest import client_for

pytestmark = pytest.mark.django_db

CORPUS = [
    "../x",
    "a/../../x",
    "..\\x",
    "a\\..\\..\\x",
    "%2e%2e%2fx",
    "%252e%252e%252fx",
    ";/../x",
    "x;/..",
    "#..",
    "#../../x",
    "/etc/x",
    "//etc/x",
    "file:///etc/x",
    "file:/etc/x",
]
SECRET = b"outside-the-artifact-root"


def _tree(base: Path) -> dict[str, tuple[int, int]]:
    """Every file under `base` with its size and mtime: what `find -newer marker` compares."""
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in base.rglob("*")
        if p.is_file() or p.is_symlink()
    }


@pytest.fixture
def run(api_client: APIClient) -> dict[str, Any]:
    response = api_client.post("/api/v1/runs/", {"experiment_name": "t14"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def outside(tmp_path: Path, artifact_root: Path) -> Path:
    """A file next to the artifact root, that nothing may read or overwrite."""
    artifact_root.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "x"
    secret.write_bytes(SECRET)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "x").write_bytes(SECRET)
    return secret


def _urls(run: dict[str, Any], name: str) -> list[str]:
    run_id, experiment_id = run["run_id"], run["experiment_id"]
    return [
        f"/api/v1/runs/{run_id}/artifacts/{name}",
        f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{name}",
    ]


@pytest.mark.parametrize("encode", [False, True], ids=["as-is", "percent-encoded"])
@pytest.mark.parametrize("name", CORPUS)
def test_a_traversal_upload_is_a_400_that_creates_or_changes_no_file(
    api_client: APIClient,
    run: dict[str, Any],
    tmp_path: Path,
    outside: Path,
    name: str,
    encode: bool,
) -> None:
    # `#` would otherwise end the path on the client; percent-encoding sends every byte.
    sent = quote(name, safe="") if encode else name.replace("#", "%23")
    before = _tree(tmp_path)
    for url in _urls(run, sent):
        response = api_client.put(url, b"owned", content_type="application/octet-stream")
        assert response.status_code == 400, (url, response.status_code)
    assert _tree(tmp_path) == before
    assert not Artifact.objects.exists()
    assert outside.read_bytes() == SECRET


@pytest.mark.parametrize("name", CORPUS)
def test_a_traversal_download_reads_nothing_outside_the_root(
    api_client: APIClient, run: dict[str, Any], outside: Path, name: str
) -> None:
    for url in _urls(run, name.replace("#", "%23")):
        response = api_client.get(url)
        assert response.status_code in (400, 404), (url, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert SECRET not in body


def test_the_snapshot_sees_a_file_written_outside_the_root(tmp_path: Path, outside: Path) -> None:
    """The control of the tests above: a write next to the root changes the snapshot."""
    before = _tree(tmp_path)
    (tmp_path / "escaped").write_bytes(b"owned")
    assert _tree(tmp_path) != before


class _Canary:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


def test_an_uploaded_pickle_is_refused_at_registration_as_an_unsupported_format(
    api_client: APIClient, run: dict[str, Any], promoter: Any, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    run_id = run["run_id"]
    upload = api_client.put(
        f"/api/v1/runs/{run_id}/artifacts/{MODEL_ARTIFACT}",
        pickle.dumps(_Canary(str(canary))),
        content_type="application/octet-stream",
    )
    assert upload.status_code in (200, 201), upload.content  # a run may hold any file
    finished = api_client.patch(f"/api/v1/runs/{run_id}", {"status": "FINISHED"}, format="json")
    assert finished.status_code == 200, finished.content

    registrar = client_for(promoter)
    response = registrar.post("/api/v1/models/pickled/versions/", {"run_id": run_id}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "unsupported_model_format"
    assert "never registered or loaded" in response.json()["detail"]
    assert not canary.exists()
    assert not ModelVersion.objects.exists() and not RegisteredModel.objects.exists()


# --- webhook SSRF at configuration time ---------------------------------------------------------

SSRF_URLS = [
    "https://127.0.0.1/hook",
    "https://[::1]/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://2130706433/hook",  # 127.0.0.1 as one decimal number
    "https://0x7f000001/hook",  # ... and as hex
    "https://[::ffff:169.254.169.254]/hook",
    "https://internal.example.test/hook",  # a name resolving to 127.0.0.1 (below)
]


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection attempt, recorded and refused; the test name resolves to loopback."""
    attempts: list[Any] = []
    real_getaddrinfo = socket.getaddrinfo

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> None:
        attempts.append(address)
        raise ConnectionRefusedError("no connections in this test")

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise ConnectionRefusedError("no connections in this test")

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list:
        if host == "internal.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


def _webhook_errors() -> list[str]:
    return [m.msg for m in run_checks() if m.id == "drift.E004"]


@pytest.mark.parametrize("url", SSRF_URLS)
def test_an_internal_webhook_url_is_refused_by_the_system_check_without_connecting(
    url: str, settings: Any, connections: list[Any]
) -> None:
    settings.DRIFT_WEBHOOK_URLS = [url]
    settings.DRIFT_WEBHOOK_SECRET = "s" * 40
    errors = _webhook_errors()
    assert len(errors) == 1 and url in errors[0], errors
    assert connections == []


def test_a_public_or_unresolvable_webhook_url_passes_the_system_check(
    settings: Any, connections: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def public_or_unknown(host: str, port: Any, *args: Any, **kwargs: Any) -> list:
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        raise socket.gaierror(socket.EAI_NONAME, "unknown")

    monkeypatch.setattr(socket, "getaddrinfo", public_or_unknown)
    # A name that does not resolve at check time is checked again at every delivery.
    settings.DRIFT_WEBHOOK_URLS = ["https://hooks.example.com/x", "https://later.example/x"]
    settings.DRIFT_WEBHOOK_SECRET = "s" * 40
    assert _webhook_errors() == []
    assert connections == []


def test_the_check_refuses_through_manage_py_check(tmp_path: Path) -> None:
    """The refusal reaches the process exit code (docker/entrypoint.sh runs migrate, which
    runs the checks, before the server starts)."""
    import subprocess
    import sys

    from tests.support import ROOT, clean_env

    env = {**clean_env(), "DRIFT_WEBHOOK_URLS": "https://2130706433/x"}
    env["DRIFT_WEBHOOK_SECRET"] = "s" * 40
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "drift.E004" in done.stderr and "2130706433" in done.stderr
