"""Fixtures of the dashboard tests: the seeded demo content, and logged-in test clients for an
analyst, a model admin and an anonymous visitor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.dashboard import seed as demo


@pytest.fixture(autouse=True)
def artifact_root(settings: Any, tmp_path: Path) -> Path:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return settings.ARTIFACT_ROOT


@pytest.fixture
def seeded(db: None) -> dict[str, Any]:
    return demo.seed()


def _client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=demo.PASSWORD)
    return client


@pytest.fixture
def analyst(seeded: dict[str, Any]) -> Client:
    return _client_for(demo.ANALYST)


@pytest.fixture
def admin(seeded: dict[str, Any]) -> Client:
    return _client_for(demo.ADMIN)
