"""The audit log: every hooked action writes one row with its actor, source IP and request id;
the rows are append-only (model, queryset, PostgreSQL trigger); refused and lost promotions are
audited; the admin is read-only; the API is for auditors only; each record is logged too."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from rest_framework.test import APIClient

from registry.errors import PromotionConflict, PromotionRefused
from registry.models import ModelVersion, Stage, StageTransition
from registry.services import version_transition
from tradingsite import audit
from tradingsite.models import AppendOnlyError, AuditAction, AuditEvent

pytestmark = pytest.mark.django_db
GOOD = {"accuracy": 0.6, "roc_auc": 0.6}
FLAT = {"accuracy": 0.5, "roc_auc": 0.5}
IP = "203.0.113.7"
RID = "req-audit-0001"


def only(action: str, **filters: Any) -> AuditEvent:
    rows = list(AuditEvent.objects.filter(action=action, **filters))
    assert len(rows) == 1, [(r.action, r.outcome, r.actor_username) for r in rows]
    return rows[0]


def api(user: Any = None) -> APIClient:
    client = APIClient(REMOTE_ADDR=IP, HTTP_X_REQUEST_ID=RID)
    if user is not None:
        client.force_authenticate(user)
    return client


# --- the service and its guards --------------------------------------------------------------


def test_record_writes_a_row_and_logs_it_once_it_commits(
    user: Any, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
) -> None:
    with caplog.at_level(logging.INFO, logger="tradingsite.audit"):
        with django_capture_on_commit_callbacks(execute=False) as pending:
            event = audit.record(
                AuditAction.ADMIN_CHANGE, actor=user, target=user, details={"flag": "change"}
            )
        assert not [r for r in caplog.records if r.name == "tradingsite.audit"]  # not yet
        for callback in pending:
            callback()
    assert (event.actor_id, event.actor_username) == (user.pk, "analyst")
    assert (event.target_type, event.target_id) == ("auth.user", str(user.pk))
    (line,) = [r for r in caplog.records if r.name == "tradingsite.audit"]
    assert line.action == "admin.change" and line.outcome == "success"
    assert line.audit_id == event.pk and line.actor == "analyst"
    assert line.details == {"flag": "change"}


def test_the_log_line_is_json_in_the_log_stream(user: Any) -> None:
    from pythonjsonlogger.json import JsonFormatter

    event = audit.record(AuditAction.LOGIN, actor=user, details={"method": "jwt"})
    captured: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = captured.append  # type: ignore[method-assign]
    audit.logger.addHandler(handler)
    try:
        audit._log(event)
    finally:
        audit.logger.removeHandler(handler)
    formatter = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    line = json.loads(formatter.format(captured[0]))
    assert line["name"] == "tradingsite.audit" and line["action"] == "auth.login"
    assert line["actor"] == "analyst" and line["details"] == {"method": "jwt"}


def test_unknown_actions_and_outcomes_are_refused(user: Any) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record("auth.sudo", actor=user)
    with pytest.raises(ValueError, match="unknown audit outcome"):
        audit.record(AuditAction.LOGIN, outcome="meh", actor=user)
    assert not AuditEvent.objects.exists()


def test_rows_cannot_be_changed_or_deleted_through_the_orm(user: Any) -> None:
    event = audit.record(AuditAction.LOGIN, actor=user)
    event.outcome = "failure"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(outcome="failure")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    event.refresh_from_db()
    assert event.outcome == "success"


def test_deleting_a_user_keeps_their_trail(django_user_model: Any, password: str) -> None:
    gone = django_user_model.objects.create_user("gone", password=password)
    audit.record(AuditAction.LOGIN, actor=gone)
    gone.delete()
    event = only(AuditAction.LOGIN)
    assert event.actor_username == "gone" and event.actor_id is not None


@pytest.mark.postgres
def test_postgresql_refuses_update_and_delete_from_any_client(user: Any) -> None:
    event = audit.record(AuditAction.LOGIN, actor=user)
    table = AuditEvent._meta.db_table
    for sql in (
        f"UPDATE {table} SET outcome = 'failure' WHERE id = %s",
        f"DELETE FROM {table} WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    event.refresh_from_db()
    assert event.outcome == "success"


# --- authentication ------------------------------------------------------------------------


def test_a_dashboard_login_and_logout_are_audited_with_ip_and_request_id(
    user: Any, password: str
) -> None:
    client = Client(REMOTE_ADDR=IP, HTTP_X_REQUEST_ID=RID)
    response = client.post("/dashboard/login/", {"username": "analyst", "password": password})
    assert response.status_code == 302
    login = only(AuditAction.LOGIN)
    assert (login.actor_id, login.source_ip, login.request_id) == (user.pk, IP, RID)
    assert login.details["method"] == "session"
    client.post("/dashboard/logout/")
    assert only(AuditAction.LOGOUT).actor_id == user.pk


def test_a_failed_login_is_audited_without_the_password(user: Any) -> None:
    client = Client(REMOTE_ADDR=IP)
    response = client.post("/admin/login/", {"username": "analyst", "password": "wrong-one-1"})
    assert response.status_code == 200  # the form again
    failed = only(AuditAction.LOGIN_FAILED)
    assert (failed.actor_id, failed.actor_username, failed.outcome) == (None, "analyst", "failure")
    assert failed.source_ip == IP and "wrong-one-1" not in str(failed.details)
    assert not AuditEvent.objects.filter(action=AuditAction.LOGIN).exists()


def test_the_client_ip_honours_the_configured_proxies(user: Any, settings: Any) -> None:
    settings.NUM_PROXIES = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.9")
    client.post("/api/v1/auth/token/", {"username": "analyst", "password": "x"}, format="json")
    assert only(AuditAction.LOGIN_FAILED).source_ip == "198.51.100.9"  # not the spoofable 1st


def test_the_jwt_lifecycle_is_audited(user: Any, password: str) -> None:
    client = api()
    pair = client.post(
        "/api/v1/auth/token/", {"username": "analyst", "password": password}, format="json"
    ).json()
    login = only(AuditAction.LOGIN)
    assert (login.actor_id, login.source_ip, login.request_id) == (user.pk, IP, RID)
    assert login.details["method"] == "jwt"

    assert (
        client.post("/api/v1/auth/token/", {"username": "analyst", "password": "no"}).status_code
        == 401
    )
    assert only(AuditAction.LOGIN_FAILED).details["path"] == "/api/v1/auth/token/"

    rotated = client.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]})
    assert rotated.status_code == 200
    replay = client.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]})
    assert replay.status_code == 401
    assert only(AuditAction.TOKEN_REFRESH_FAILED).source_ip == IP

    client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated.json()['access']}")
    response = client.post(
        "/api/v1/auth/token/revoke/", {"refresh": rotated.json()["refresh"]}, format="json"
    )
    assert response.status_code == 200
    revoked = only(AuditAction.TOKEN_REVOKED)
    assert revoked.actor_id == user.pk and revoked.details == {"revoked": ["access", "refresh"]}
    assert revoked.target_type == "jwt" and revoked.target_id


def test_personal_api_tokens_are_audited(user: Any, password: str) -> None:
    client = Client(REMOTE_ADDR=IP)
    client.login(username="analyst", password=password)
    created = client.post(
        "/api/v1/auth/api-tokens/", {"name": "ci"}, content_type="application/json"
    ).json()
    event = only(AuditAction.API_TOKEN_CREATED)
    assert (event.actor_id, event.target_id, event.source_ip) == (user.pk, str(created["id"]), IP)
    assert created["token"] not in str(event.details)  # only the shown prefix
    client.delete(f"/api/v1/auth/api-tokens/{created['id']}")
    assert only(AuditAction.API_TOKEN_REVOKED).target_id == str(created["id"])


def test_a_signed_in_user_refused_an_operation_is_audited(user: Any) -> None:
    response = api(user).post(
        "/api/v1/models/m/versions/1/promote", {"stage": "Production", "reason": "r"}
    )
    assert response.status_code == 403
    denied = only(AuditAction.PERMISSION_DENIED)
    assert denied.actor_id == user.pk and denied.outcome == "denied"
    assert denied.details["path"] == "/api/v1/models/m/versions/1/promote"
    assert APIClient().get("/api/v1/models/").status_code == 401
    assert AuditEvent.objects.filter(action=AuditAction.PERMISSION_DENIED).count() == 1


# --- promotions ---------------------------------------------------------------------------


def promote_url(version: ModelVersion) -> str:
    return f"/api/v1/models/{version.model.name}/versions/{version.version}/promote"


def test_an_applied_promotion_is_audited_in_its_transaction(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    version = make_version(metrics=GOOD)
    response = api(promoter).post(
        promote_url(version), {"stage": "Production", "reason": "ship it"}, format="json"
    )
    assert response.status_code == 200, response.content
    event = only(AuditAction.PROMOTION)
    assert (event.outcome, event.actor_id, event.source_ip, event.request_id) == (
        "applied", promoter.pk, IP, RID,
    )  # fmt: skip
    assert (event.target_type, event.target_id) == ("registry.modelversion", str(version.pk))
    assert event.details["transition_id"] == response.json()["id"]
    assert event.details["to_stage"] == "Production"


def test_refused_and_invalid_attempts_are_audited(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    version = make_version(metrics=FLAT)
    client = api(promoter)
    body = {"stage": "Production", "reason": "ship it"}
    refused = client.post(promote_url(version), body, format="json")
    assert refused.status_code == 409
    event = only(AuditAction.PROMOTION, outcome="refused")
    assert event.details["transition_id"] == refused.json()["transition_id"]
    assert event.details["failed_rules"]
    denied = client.post(
        promote_url(version), {**body, "override_justification": "trust me, please"}
    )
    assert denied.status_code == 403
    assert only(AuditAction.PROMOTION, outcome="denied").details["code"] == "permission_denied"
    assert client.post(promote_url(version), {**body, "stage": "None"}).status_code == 400
    assert only(AuditAction.PROMOTION, outcome="invalid").details["to_stage"] == "None"
    assert StageTransition.objects.count() == 1  # the history holds the refusal only


def test_a_lost_promotion_409_is_audited(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    first, second = make_version(metrics=GOOD), make_version(metrics={**GOOD, "roc_auc": 0.7})
    version_transition(version=first, to_stage=Stage.PRODUCTION, actor=promoter, reason="one")
    response = api(promoter).post(
        promote_url(second),
        {"stage": "Production", "reason": "two", "expected_production_version": None},
        format="json",
    )
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    conflict = only(AuditAction.PROMOTION, outcome="conflict")
    assert conflict.target_id == str(second.pk) and conflict.source_ip == IP


def test_a_rollback_is_audited(make_version: Callable[..., ModelVersion], promoter: Any) -> None:
    first, second = make_version(metrics=GOOD), make_version(metrics={**GOOD, "roc_auc": 0.7})
    for version in (first, second):
        version_transition(version=version, to_stage=Stage.PRODUCTION, actor=promoter, reason="x")
    response = api(promoter).post(
        f"/api/v1/models/{first.model.name}/rollback", {"reason": "bad"}, format="json"
    )
    assert response.status_code == 200, response.content
    event = only(AuditAction.ROLLBACK)
    assert event.outcome == "applied" and event.target_id == str(first.pk)


@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_committed_before_the_error_is_raised(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    version = make_version(metrics=FLAT)
    with pytest.raises(PromotionRefused):
        version_transition(version=version, to_stage=Stage.PRODUCTION, actor=promoter, reason="x")
    # autocommit and no transaction open: a row this connection sees is a committed row
    assert connection.get_autocommit() and not connection.in_atomic_block
    assert only(AuditAction.PROMOTION, outcome="refused").actor_id == promoter.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_both_sides_of_a_promotion_race_are_audited(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    from tests.registry.test_concurrency import race

    pair = [make_version(metrics=GOOD), make_version(metrics=GOOD)]  # v1 and v2 of one model
    outcomes = race(pair, promoter, reason="race")
    assert sorted(outcomes) == ["applied", "conflict"]
    events = AuditEvent.objects.filter(action=AuditAction.PROMOTION)
    assert sorted(events.values_list("outcome", flat=True)) == ["applied", "conflict"]
    assert {e.target_id for e in events} == {str(v.pk) for v in pair}
    loser = ModelVersion.objects.exclude(stage=Stage.PRODUCTION).get(pk__in=[v.pk for v in pair])
    with pytest.raises(PromotionConflict):
        version_transition(
            version=loser,
            to_stage=Stage.PRODUCTION, actor=promoter, reason="late",
            expected_production=None,
        )  # fmt: skip
    assert AuditEvent.objects.filter(action=AuditAction.PROMOTION, outcome="conflict").count() == 2


# --- the admin -----------------------------------------------------------------------------


def test_admin_changes_are_audited(superuser: Any, password: str) -> None:
    client = Client(REMOTE_ADDR=IP)
    client.login(username="root", password=password)
    response = client.post("/admin/auth/group/add/", {"name": "ops", "permissions": []})
    assert response.status_code == 302, response.content
    group = Group.objects.get(name="ops")
    event = only(AuditAction.ADMIN_CHANGE)
    assert (event.actor_id, event.source_ip) == (superuser.pk, IP)
    assert (event.target_type, event.target_id, event.target_repr) == (
        "auth.group", str(group.pk), "ops",
    )  # fmt: skip
    assert event.details["flag"] == "addition"
    client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    deleted = AuditEvent.objects.filter(action=AuditAction.ADMIN_CHANGE).first()
    assert deleted.details["flag"] == "deletion" and deleted.target_repr == "ops"


def test_the_audit_admin_is_read_only(superuser: Any, password: str, user: Any) -> None:
    event = audit.record(AuditAction.LOGIN, actor=user)
    client = Client()
    client.login(username="root", password=password)
    base = "/admin/tradingsite/auditevent/"
    listing = client.get(base + "?action__exact=auth.login&q=analyst")
    assert listing.status_code == 200 and b"analyst" in listing.content
    assert client.get(base + "add/").status_code == 403
    assert client.post(f"{base}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    page = client.get(f"{base}{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    client.post(f"{base}{event.pk}/change/", {"outcome": "failure"})
    event.refresh_from_db()
    assert event.outcome == "success"


# --- the API -------------------------------------------------------------------------------


def test_the_api_is_for_auditors_only(user: Any, auditor: Any, superuser: Any) -> None:
    audit.record(AuditAction.LOGIN, actor=user)
    assert APIClient().get("/api/v1/audit/").status_code == 401
    assert api(user).get("/api/v1/audit/").status_code == 403
    for reader in (auditor, superuser):
        response = api(reader).get("/api/v1/audit/")
        assert response.status_code == 200
        assert [e["action"] for e in response.json()["results"]][-1] == "auth.login"
    assert api(superuser).post("/api/v1/audit/", {}).status_code == 405


def test_the_api_filters(user: Any, auditor: Any, promoter: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    audit.record(AuditAction.LOGIN, actor=user)
    audit.record(AuditAction.LOGIN_FAILED, outcome="failure", actor_username="mallory")
    audit.record(AuditAction.ADMIN_CHANGE, actor=promoter, target=user)
    client = api(auditor)

    def actions(**query: Any) -> list[str]:
        response = client.get("/api/v1/audit/", query)
        assert response.status_code == 200, response.content
        return sorted(e["action"] for e in response.json()["results"])

    assert actions(action="auth.*") == ["auth.login", "auth.login_failed"]
    assert actions(action="admin.change,auth.login") == ["admin.change", "auth.login"]
    assert actions(actor="mallory") == ["auth.login_failed"]
    assert actions(outcome="failure") == ["auth.login_failed"]
    assert actions(target=f"auth.user:{user.pk}") == ["admin.change"]
    assert actions(target="auth.user:0") == []
    soon = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert actions(since=soon) == []
    assert len(actions(until=soon)) == 3
    page = client.get("/api/v1/audit/", {"limit": 1}).json()
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"]
    for bad in ({"action": "auth.sudo"}, {"since": "yesterday"}, {"outcome": "meh"},
                {"since": soon, "until": soon}):  # fmt: skip
        assert client.get("/api/v1/audit/", bad).status_code == 400, bad


# --- drift scans ---------------------------------------------------------------------------


def test_drift_scan_triggers_are_audited(user: Any) -> None:
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="run_scan"))
    user = type(user).objects.get(pk=user.pk)
    client = api(user)
    accepted = client.post("/api/v1/drift/scan", {}, format="json")
    assert accepted.status_code == 202, accepted.content
    event = only(AuditAction.DRIFT_SCAN_TRIGGERED, outcome="accepted")
    assert (event.actor_id, event.source_ip, event.target_id) == (
        user.pk, IP, str(accepted.json()["id"]),
    )  # fmt: skip
    assert client.post("/api/v1/drift/scan", {"model": "nope"}, format="json").status_code == 404
    assert only(AuditAction.DRIFT_SCAN_TRIGGERED, outcome="invalid").details["model"] == "nope"


def test_the_drift_scan_command_is_audited() -> None:
    call_command("drift_scan", stdout=io.StringIO())
    event = only(AuditAction.DRIFT_SCAN_TRIGGERED, outcome="accepted")
    assert event.details["via"] == "command" and event.actor_id is None
    with pytest.raises(CommandError):
        call_command("drift_scan", "--model", "nope", stdout=io.StringIO())
    assert only(AuditAction.DRIFT_SCAN_TRIGGERED, outcome="invalid").details["model"] == "nope"
