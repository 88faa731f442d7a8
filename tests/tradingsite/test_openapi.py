"""The OpenAPI schema is valid, warning-free, and its docs UI needs no internet."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings(tmp_path: Any) -> None:
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    schema = (tmp_path / "s.yml").read_text()
    assert "/api/v1/auth/token/" in schema
    assert "jwtAuth" in schema


def test_the_docs_page_loads_its_assets_locally(user: Any, password: str) -> None:
    client = Client()
    client.login(username=user.username, password=password)
    page = client.get("/api/v1/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any("drf_spectacular_sidecar" in a for a in assets)
    assert not [a for a in assets if a.startswith(("http://", "https://", "//"))]
    assert client.get("/api/v1/schema/").status_code == 200
