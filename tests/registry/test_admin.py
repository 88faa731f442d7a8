"""Admin promotions: a confirmation page with every policy rule's result, then the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from registry.models import ModelVersion, Stage, StageTransition
from registry.services import version_transition

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/registry/modelversion/"
MODELS = "/admin/registry/registeredmodel/"
GOOD = {"accuracy": 0.6, "roc_auc": 0.6}


def staff(user: Any) -> Client:
    user.is_staff = True
    user.save()
    for codename in ("view_modelversion", "view_registeredmodel", "view_stagetransition"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def act(client: Client, url: str, action: str, pks: list[int], **extra: str) -> Any:
    return client.post(url, {"action": action, "_selected_action": pks, **extra})


def test_the_actions_are_offered_only_with_the_promote_permission(
    make_version: Callable[..., ModelVersion], promoter: Any, user: Any
) -> None:
    make_version()
    page = staff(promoter).get(CHANGELIST).content.decode()
    assert "promote_to_production" in page and "move_to_staging" in page and "archive" in page
    assert "rollback" in staff(promoter).get(MODELS).content.decode()
    page = staff(user).get(CHANGELIST).content.decode()
    assert "promote_to_production" not in page and "archive" not in page
    assert "rollback" not in staff(user).get(MODELS).content.decode()


def test_a_user_without_the_permission_cannot_run_an_action(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    version = make_version(metrics=GOOD)
    client = staff(user)
    act(client, CHANGELIST, "promote_to_production", [version.pk], apply="1", reason="sneak")
    version.refresh_from_db()
    assert version.stage == Stage.NONE
    assert not StageTransition.objects.exists()


def test_the_confirmation_page_shows_every_policy_result_before_acting(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    version = make_version(metrics={"accuracy": 0.5, "roc_auc": 0.5})
    response = act(staff(promoter), CHANGELIST, "promote_to_production", [version.pk])
    assert response.status_code == 200
    assert response.templates[0].name == "admin/registry/confirm_transition.html"
    page = response.content.decode()
    for rule in ("min_metric", "beats_production", "no_open_high_drift", "feature_quality_min",
                 "artifact_hash_verifies", "required_permission"):  # fmt: skip
        assert rule in page
    assert "accuracy 0.5 is below the minimum 0.52" in page and "refused" in page
    assert 'name="override_justification"' not in page  # promoter may not override
    version.refresh_from_db()
    assert version.stage == Stage.NONE and not StageTransition.objects.exists()


def test_confirming_promotes_through_the_service(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    version = make_version(metrics=GOOD)
    client = staff(promoter)
    missing = act(client, CHANGELIST, "promote_to_production", [version.pk], apply="1", reason="")
    assert "A reason is required." in missing.content.decode()
    response = act(
        client, CHANGELIST, "promote_to_production", [version.pk], apply="1", reason="admin go"
    )
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.stage == Stage.PRODUCTION
    transition = StageTransition.objects.get()
    assert (transition.actor, transition.reason, transition.outcome) == (
        promoter,
        "admin go",
        "applied",
    )
    history = client.get(f"{CHANGELIST}{version.pk}/change/").content.decode()
    assert "admin go" in history  # the history inline


def test_a_refusal_in_the_admin_is_recorded_and_an_override_applies(
    make_version: Callable[..., ModelVersion], promoter: Any, overrider: Any
) -> None:
    version = make_version(metrics={"accuracy": 0.5, "roc_auc": 0.5})
    act(staff(promoter), CHANGELIST, "promote_to_production", [version.pk], apply="1", reason="go")
    version.refresh_from_db()
    assert version.stage == Stage.NONE
    assert StageTransition.objects.get().outcome == "refused"
    client = staff(overrider)
    page = act(client, CHANGELIST, "promote_to_production", [version.pk]).content.decode()
    assert 'name="override_justification"' in page
    act(
        client, CHANGELIST, "promote_to_production", [version.pk],
        apply="1", reason="go", override_justification="demo model, no edge expected",
    )  # fmt: skip
    version.refresh_from_db()
    assert version.stage == Stage.PRODUCTION
    assert StageTransition.objects.filter(outcome="overridden").count() == 1


def test_staging_archive_and_rollback_actions(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    v1, v2 = make_version(metrics=GOOD), make_version(metrics={"accuracy": 0.6, "roc_auc": 0.7})
    client = staff(promoter)
    act(client, CHANGELIST, "move_to_staging", [v1.pk], apply="1", reason="try")
    v1.refresh_from_db()
    assert v1.stage == Stage.STAGING
    for v in (v1, v2):
        version_transition(version=v, to_stage=Stage.PRODUCTION, actor=promoter, reason="go")
    page = act(client, MODELS, "rollback", [v1.model_id]).content.decode()
    assert "direction: v2 → v1" in page and "no_open_high_drift" in page
    act(client, MODELS, "rollback", [v1.model_id], apply="1", reason="v2 bad")
    v1.refresh_from_db()
    assert v1.stage == Stage.PRODUCTION
    act(client, CHANGELIST, "archive", [v1.pk], apply="1", reason="retire")
    v1.refresh_from_db()
    assert v1.stage == Stage.ARCHIVED


def test_the_history_is_read_only_in_the_admin(
    make_version: Callable[..., ModelVersion], promoter: Any, admin_client: Client
) -> None:
    version = make_version(metrics=GOOD)
    t = version_transition(version=version, to_stage=Stage.STAGING, actor=promoter, reason="x")
    assert admin_client.get(f"/admin/registry/stagetransition/{t.pk}/change/").status_code == 200
    assert admin_client.post(f"/admin/registry/stagetransition/{t.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/registry/stagetransition/add/").status_code == 403
