from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from registry.models import ModelVersion, Stage, StageTransition
from registry.selectors import registry_counts

pytestmark = pytest.mark.django_db


def test_bootstrap_demo_puts_the_demo_model_in_production_through_the_policy(
    api_client: Any,
) -> None:
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    call_command("bootstrap_demo", stdout=StringIO())  # idempotent: still one version
    version = ModelVersion.objects.get()
    assert (version.model.name, version.version, version.stage) == (
        "next-bar-direction", 1, Stage.PRODUCTION,
    )  # fmt: skip
    assert version.run.name == "demo" and version.feature_view is not None
    transition = StageTransition.objects.get()
    assert transition.actor.username == "admin" and transition.reason == "demo"
    failed = [r["rule"] for r in transition.policy_results if not r["passed"]]
    if failed:  # the demo model has no edge: its metric floors fail, and the admin overrides
        assert transition.outcome == "overridden"
        assert transition.override_justification == "demo model, no edge expected"
        assert not {"required_permission", "artifact_hash_verifies"} & set(failed)
    else:
        assert transition.outcome == "applied"
    assert "promoted it to Production" in out.getvalue()
    assert registry_counts()["production_versions"] == 1
    registry = api_client.get("/api/v1/ml/status").json()["registry"]
    assert registry == {"models": 1, "versions": 1, "production_versions": 1}
