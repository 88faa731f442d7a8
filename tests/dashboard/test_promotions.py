"""Promotions through the dashboard: the page shows every policy rule's result before anything
happens, then the confirmation goes through registry.services.version_transition (the one
promotion path), and the attempt shows in the model's stage history, whatever its outcome."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from registry import views as registry_views
from registry.models import ModelVersion, Stage, StageTransition
from registry.services import model_version_create_from_run, version_transition
from tests.dashboard import seed as demo
from tradingsite.dashboard.roles import MODEL_ADMIN_GROUP
from tradingsite.models import Event

pytestmark = pytest.mark.django_db
MODEL_PAGE = "/dashboard/models/next-bar-direction/"


def promote_url(version: int, stage: str = "Production") -> str:
    return f"/dashboard/models/next-bar-direction/versions/{version}/promote/?stage={stage}"


def test_the_page_shows_every_policy_rule_before_anything_changes(
    admin: Client, seeded: dict[str, Any]
) -> None:
    before = StageTransition.objects.count()
    response = admin.get(promote_url(2))
    assert response.status_code == 200
    results = response.context["results"]
    assert [r["rule"] for r in results] == [
        "min_metric", "min_metric", "beats_production", "no_open_high_drift",
        "feature_quality_min", "artifact_hash_verifies", "required_permission",
    ]  # fmt: skip
    assert all(r["passed"] for r in results)
    body = response.content.decode()
    assert body.count('class="nowrap rule-passed"') == 7
    assert "roc_auc 0.59 vs 0.51 of next-bar-direction v1" in body
    assert "all rules pass" in body and "v1 is archived" in body
    assert StageTransition.objects.count() == before  # a dry run records nothing


def test_confirming_promotes_through_the_service_and_shows_in_the_history(
    admin: Client, seeded: dict[str, Any]
) -> None:
    with mock.patch.object(
        registry_views, "version_transition", wraps=version_transition
    ) as service:
        response = admin.post(
            promote_url(2),
            {"reason": "better walk-forward ROC AUC", "stage": "Production",
             "expected_production": seeded["production"].pk},
        )  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == f"{MODEL_PAGE}#history"
    assert service.call_args.kwargs["to_stage"] == "Production"
    assert service.call_args.kwargs["expected_production"] == seeded["production"]
    candidate, first = seeded["candidate"], seeded["production"]
    candidate.refresh_from_db()
    first.refresh_from_db()
    assert (candidate.stage, first.stage) == (Stage.PRODUCTION, Stage.ARCHIVED)
    latest = StageTransition.objects.filter(version=candidate).latest("id")
    assert (latest.outcome, latest.actor.username, latest.reason) == (
        "applied", demo.ADMIN, "better walk-forward ROC AUC",
    )  # fmt: skip
    assert len(latest.policy_results) == 7
    assert Event.objects.filter(type="models.promoted", payload__version=2).exists()
    page = admin.get(MODEL_PAGE)
    history = [t.pk for t in page.context["history"]]
    assert history[0] == latest.pk
    assert "v2 → Production (applied)" in page.content.decode()  # the success message
    assert page.context["timeline_chart"]["data"]  # the timeline draws it too


def test_a_missing_reason_records_nothing(admin: Client, seeded: dict[str, Any]) -> None:
    before = StageTransition.objects.count()
    response = admin.post(promote_url(2), {"reason": "  ", "stage": "Production"})
    assert response.status_code == 400
    assert (
        b"A reason is required" in response.content or b"This field is required" in response.content
    )
    assert StageTransition.objects.count() == before


def _weak_version(seeded: dict[str, Any]) -> ModelVersion:
    """A third version of next-bar-direction from the weak demo-1 run: the policy refuses it."""
    return model_version_create_from_run(
        model_name="next-bar-direction", run=seeded["runs"][0], user=None
    )


def test_a_refusal_shows_the_failed_rules_and_is_recorded(
    admin: Client, seeded: dict[str, Any]
) -> None:
    weak = _weak_version(seeded)
    response = admin.post(promote_url(weak.version), {"reason": "try", "stage": "Production"})
    assert response.status_code == 409
    body = response.content.decode()
    assert "the promotion policy refused" in body
    assert "rule-failed" in body and "rules fail" in body
    refused = StageTransition.objects.get(version=weak)
    assert refused.outcome == "refused"
    weak.refresh_from_db()
    assert weak.stage == Stage.NONE


def test_a_model_admin_with_the_override_permission_may_override_with_a_justification(
    admin: Client, seeded: dict[str, Any]
) -> None:
    weak = _weak_version(seeded)
    assert "override_justification" in admin.get(promote_url(weak.version)).content.decode()
    response = admin.post(
        promote_url(weak.version),
        {"reason": "shadow test", "override_justification": "approved by the risk committee",
         "stage": "Production", "expected_production": seeded["production"].pk},
    )  # fmt: skip
    assert response.status_code == 302
    transition = StageTransition.objects.filter(version=weak).latest("id")
    assert transition.outcome == "overridden"
    assert transition.override_justification == "approved by the risk committee"


def test_an_override_without_the_override_permission_is_refused(
    seeded: dict[str, Any], django_user_model: Any
) -> None:
    plain_admin = django_user_model.objects.create_user("promoter", password=demo.PASSWORD)
    plain_admin.groups.add(Group.objects.get(name=MODEL_ADMIN_GROUP))
    client = Client()
    client.login(username="promoter", password=demo.PASSWORD)
    weak = _weak_version(seeded)
    page = client.get(promote_url(weak.version)).content.decode()
    assert "override_justification" not in page  # the field is only offered to who may use it
    response = client.post(
        promote_url(weak.version),
        {"reason": "try", "override_justification": "I insist, really", "stage": "Production"},
    )
    assert response.status_code == 403
    assert not StageTransition.objects.filter(version=weak).exists()


def test_a_promotion_confirmed_on_a_stale_page_is_a_recorded_conflict(
    admin: Client, seeded: dict[str, Any]
) -> None:
    page = admin.get(promote_url(2))
    seen = page.context["form"].initial["expected_production"]
    # Meanwhile someone else puts another version in Production.
    other = model_version_create_from_run(
        model_name="next-bar-direction", run=seeded["runs"][2], user=None
    )
    version_transition(
        version=other, to_stage=Stage.PRODUCTION, actor=seeded["users"][demo.ADMIN],
        reason="elsewhere", override_justification="racing the dashboard",
    )  # fmt: skip
    response = admin.post(
        promote_url(2), {"reason": "as seen", "stage": "Production", "expected_production": seen}
    )
    assert response.status_code == 409
    assert "concurrent promotion" in response.content.decode()
    assert StageTransition.objects.filter(version=seeded["candidate"]).latest("id").outcome == (
        "conflict"
    )


def test_moving_to_staging_and_archiving_use_the_same_page(
    admin: Client, seeded: dict[str, Any]
) -> None:
    response = admin.post(promote_url(2, "Staging"), {"reason": "canary", "stage": "Staging"})
    assert response.status_code == 302
    seeded["candidate"].refresh_from_db()
    assert seeded["candidate"].stage == Stage.STAGING
    assert admin.get(promote_url(2, "Staging")).status_code == 400  # already there
    assert admin.get(promote_url(2, "Sideways")).status_code == 400


def test_rolling_back_restores_the_previous_production_version(
    admin: Client, seeded: dict[str, Any]
) -> None:
    admin.post(promote_url(2), {"reason": "v2 go", "stage": "Production"})
    page = admin.get("/dashboard/models/next-bar-direction/")
    assert b'id="rollback-button"' in page.content and b"Roll back to v1" in page.content
    confirm = admin.get("/dashboard/models/next-bar-direction/rollback/")
    assert confirm.status_code == 200
    assert confirm.context["version"] == seeded["production"]
    assert [r["rule"] for r in confirm.context["results"]] == [
        "no_open_high_drift", "feature_quality_min", "artifact_hash_verifies",
        "required_permission",
    ]  # fmt: skip
    response = admin.post("/dashboard/models/next-bar-direction/rollback/", {"reason": "v2 bad"})
    # v1 has open HIGH drift in the demo: the rollback rules refuse it, visibly and recorded
    assert response.status_code == 409
    assert "no_open_high_drift" in response.content.decode()
    latest = StageTransition.objects.latest("id")
    assert (latest.version_id, latest.outcome) == (seeded["production"].pk, "refused")


def test_a_rollback_the_policy_allows_is_applied(admin: Client, seeded: dict[str, Any]) -> None:
    from drift.models import DriftReport

    admin.post(promote_url(2), {"reason": "v2 go", "stage": "Production"})
    DriftReport.objects.filter(model_version=seeded["production"]).update(severity="LOW")
    response = admin.post("/dashboard/models/next-bar-direction/rollback/", {"reason": "v2 bad"})
    assert response.status_code == 302
    seeded["production"].refresh_from_db()
    assert seeded["production"].stage == Stage.PRODUCTION
    assert Event.objects.filter(type="models.rolled_back").exists()


def test_the_admin_actions_confirmation_pages_link_to_the_dashboard(
    seeded: dict[str, Any],
) -> None:
    boss = seeded["users"][demo.ADMIN]
    boss.is_staff = True
    boss.save()
    client = Client()
    client.force_login(boss)
    candidate = seeded["candidate"]
    page = client.post(
        "/admin/registry/modelversion/",
        {"action": "promote_to_production", "_selected_action": [candidate.pk]},
    ).content.decode()
    assert (
        'href="/dashboard/models/next-bar-direction/versions/2/promote/?stage=Production"' in page
    )
    page = client.post(
        "/admin/registry/registeredmodel/",
        {"action": "rollback", "_selected_action": [candidate.model_id]},
    ).content.decode()
    assert 'href="/dashboard/models/next-bar-direction/rollback/"' in page
