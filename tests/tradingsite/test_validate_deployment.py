"""`manage.py validate_deployment` against a live server (pytest-django's `live_server`)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from drift.services import drift_scan_all
from features.models import FeatureDefinition, FeatureView
from tradingsite.models import SchedulerHeartbeat

PASSWORD = "a-long-Passw0rd!"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ops_user(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("VP", PASSWORD)
    return get_user_model().objects.create_user("ops", password=PASSWORD)


def validate(live_server: Any, *extra: str) -> tuple[list[str], CommandError | None]:
    """Run the command; returns its output lines and the CommandError it raised, if any."""
    buf = io.StringIO()
    args = ["--url", live_server.url, "--username", "ops", "--password-env", "VP", *extra]
    try:
        call_command("validate_deployment", *args, stdout=buf, stderr=io.StringIO())
    except CommandError as exc:
        return buf.getvalue().splitlines(), exc
    return buf.getvalue().splitlines(), None


def line_of(lines: list[str], check: str) -> str:
    matches = [line for line in lines if line.split(" ", 2)[1:2] == [f"{check}:"]]
    assert len(matches) == 1, lines
    return matches[0]


def test_an_empty_deployment_fails_on_counts_and_drift_but_passes_health_and_auth(
    live_server: Any, ops_user: Any
) -> None:
    lines, error = validate(live_server)

    assert error is not None and error.returncode == 1
    assert line_of(lines, "health").startswith("PASS health")
    assert line_of(lines, "auth").startswith("PASS auth")
    assert "401" in line_of(lines, "auth")
    assert line_of(lines, "ml-status") == (
        "FAIL ml-status: 0 features, 0 views; expected both > 0 "
        "(is the default feature view registered?)"
    )
    assert line_of(lines, "drift-monitor").startswith("FAIL drift-monitor: no scan yet")
    assert line_of(lines, "service-matrix").startswith("FAIL service-matrix")
    assert "scheduler degraded (no heartbeat yet" in line_of(lines, "service-matrix")
    assert line_of(lines, "experiment-tracking").startswith("PASS experiment-tracking")
    assert lines[-1] == "4 passed, 3 failed"
    assert len(lines) == 8  # seven checks and the summary


def test_a_deployment_with_features_a_drift_scan_and_a_heartbeat_passes_every_check(
    live_server: Any, ops_user: Any
) -> None:
    feature = FeatureDefinition.objects.create(name="rsi_14")
    FeatureView.objects.create(name="core_technical").features.add(feature)
    drift_scan_all()
    SchedulerHeartbeat.objects.create(name="beat", last_beat_at=timezone.now())

    lines, error = validate(live_server)

    # The test environment's broker (filesystem transport), cache (locmem) and channel layer
    # (in-memory) all answer in-process, so nothing legitimately fails here.
    assert error is None, "\n".join(lines)
    assert all(line.startswith("PASS ") for line in lines[:-1]), lines
    assert line_of(lines, "ml-status").startswith("PASS ml-status: 1 features, 1 views")
    assert "no models in PRODUCTION" in line_of(lines, "drift-monitor")
    assert lines[-1] == "7 passed, 0 failed"


def test_without_a_token_the_checks_that_need_one_are_skipped(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VP", "not-the-password")  # no such user: the login is refused

    lines, error = validate(live_server)

    assert error is not None
    assert line_of(lines, "auth").startswith("FAIL auth: POST /api/v1/auth/token/ answered 401")
    assert line_of(lines, "service-matrix") == "FAIL service-matrix: skipped, needs auth"
    assert line_of(lines, "ml-status") == "FAIL ml-status: skipped, needs auth"
    assert line_of(lines, "drift-monitor") == "FAIL drift-monitor: skipped, needs ml-status"
    assert line_of(lines, "metrics").startswith("PASS metrics")


def test_an_unreachable_instance_fails_every_check_with_the_reason() -> None:
    buf = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "validate_deployment", "--url", "http://127.0.0.1:9", "--timeout", "1", stdout=buf
        )
    lines = buf.getvalue().splitlines()
    assert line_of(lines, "health").startswith("FAIL health: request failed: ConnectionError")
    assert lines[-1] == "0 passed, 7 failed"
