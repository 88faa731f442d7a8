"""Scans: every Production version once, one Celery task per version, one scheduled scan per
interval however many schedulers fire, the beat interval from DRIFT_INTERVAL_SECONDS, and the
`drift_scan` command."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from drift.models import DriftReport, DriftScan, DriftScanItem
from drift.services import drift_scan_all, drift_scan_record, drift_scan_version
from drift.tasks import drift_scan_all_task
from registry.models import ModelVersion, Stage
from tradingsite.models import Event

pytestmark = pytest.mark.django_db
MakeVersion = Callable[..., ModelVersion]


def test_a_scan_covers_each_production_version_once(
    make_version: MakeVersion, caplog: pytest.LogCaptureFixture
) -> None:
    make_version("alpha-model")
    make_version("beta-model", shift=0.0)
    make_version("staged-model", stage=Stage.STAGING)
    with caplog.at_level(logging.INFO, logger="drift.services.scans"):
        scan = drift_scan_all()
    assert scan.status == DriftScan.Status.COMPLETE
    assert (scan.models_watched, scan.reports_created, scan.items.count()) == (2, 2, 2)
    assert {r.model_version.model.name for r in DriftReport.objects.all()} == {
        "alpha-model", "beta-model",
    }  # fmt: skip
    assert "alpha-model v1: HIGH, 100% of features drifted" in scan.detail
    assert "Drift scan complete" in caplog.text and "2 model(s) watched" in caplog.text
    completed = Event.objects.get(type="drift.scan.completed")
    assert completed.payload["reports_created"] == 2 and completed.payload["status"] == "complete"


def test_a_scan_with_no_models_logs_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="drift.services.scans"):
        scan = drift_scan_all()
    assert scan.status == DriftScan.Status.COMPLETE and scan.detail == "no models in PRODUCTION"
    assert "Drift scan complete: no models in PRODUCTION" in caplog.text


def test_the_scheduled_scan_sends_one_task_per_model(
    make_version: MakeVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = [make_version("one"), make_version("two")]
    sent: list[tuple] = []
    import drift.tasks

    real_group = drift.tasks.group

    def spy(signatures: Any) -> Any:
        signatures = list(signatures)
        sent.extend((s.task, s.args) for s in signatures)
        return real_group(signatures)

    monkeypatch.setattr(drift.tasks, "group", spy)
    scan_id = drift_scan_all_task()
    assert sorted(sent) == sorted(
        ("drift.tasks.drift_scan_version_task", (scan_id, v.pk)) for v in versions
    )
    scan = DriftScan.objects.get(pk=scan_id)
    assert scan.status == "complete" and scan.trigger == "schedule" and scan.reports_created == 2


def test_two_schedulers_firing_in_one_interval_make_one_scan(
    make_version: MakeVersion, caplog: pytest.LogCaptureFixture
) -> None:
    make_version()
    first = drift_scan_all_task()
    with caplog.at_level(logging.INFO, logger="drift.services.scans"):
        second = drift_scan_all_task(trigger="startup")  # a restarted worker, a second beat
    assert first is not None and second is None
    assert DriftScan.objects.count() == 1 and DriftReport.objects.count() == 1
    assert "already claimed" in caplog.text


def test_on_demand_scans_are_not_fenced_by_the_interval(make_version: MakeVersion) -> None:
    make_version()
    drift_scan_all_task()
    again = drift_scan_all()
    assert again.duplicates == 1 and again.reports_created == 0
    assert "(window already reported)" in again.detail


def test_the_beat_schedule_uses_drift_interval_seconds(settings: Any) -> None:
    from tradingsite.celery import _install_beat_schedule, app, slot_schedule

    settings.DRIFT_INTERVAL_SECONDS = 123
    try:
        _install_beat_schedule(app)
        entry = app.conf.beat_schedule["drift-scan"]
        assert entry["task"] == "drift.tasks.drift_scan_all_task"
        assert isinstance(entry["schedule"], slot_schedule) and entry["schedule"].seconds == 123
    finally:
        settings.DRIFT_INTERVAL_SECONDS = 3600
        _install_beat_schedule(app)


def test_the_scan_slot_follows_the_interval(settings: Any) -> None:
    settings.DRIFT_INTERVAL_SECONDS = 600
    scan = DriftScan.objects.get(pk=drift_scan_all_task())
    assert scan.slot == int(scan.started_at.timestamp() // 600)


def test_a_retried_version_task_counts_once(make_version: MakeVersion) -> None:
    version = make_version()
    scan = drift_scan_all()
    item = drift_scan_record(scan=scan, version=version)  # the redelivered task
    scan.refresh_from_db()
    assert DriftScanItem.objects.filter(scan=scan).count() == 1
    assert item.outcome == "created" and scan.reports_created == 1


def test_a_report_written_before_a_crash_is_created_by_its_scan_on_retry(
    make_version: MakeVersion,
) -> None:
    """The report committed, then the worker died before recording the item: the retried task
    finds the report of its own scan and counts it as created, not as someone else's."""
    version = make_version()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("drift.services.scans.drift_scan_record", lambda **kwargs: None)
        scan = drift_scan_all()
    assert scan.status == "running"
    drift_scan_version(version, scan=scan)
    item = drift_scan_record(scan=scan, version=version)
    scan.refresh_from_db()
    assert item.outcome == "created" and scan.status == "complete" and scan.reports_created == 1


def test_a_scan_left_running_by_a_lost_worker_is_failed_by_the_next(settings: Any) -> None:
    old = DriftScan.objects.create(
        started_at=timezone.now() - timedelta(seconds=settings.DRIFT_SCAN_TIMEOUT_SECONDS + 60)
    )
    drift_scan_all()
    old.refresh_from_db()
    assert old.status == "failed" and "worker was lost" in old.detail


def test_the_drift_scan_command_prints_each_version(make_version: MakeVersion) -> None:
    make_version("cmd-model")
    make_version("other-model")
    out = StringIO()
    call_command("drift_scan", "--model", "cmd-model", stdout=out)
    text = out.getvalue()
    assert "cmd-model v1: created, report" in text and "HIGH" in text
    assert "other-model" not in text.split("Drift scan")[0]
    assert DriftScan.objects.get().trigger == "command"
    with pytest.raises(CommandError, match="no model 'nope'"):
        call_command("drift_scan", "--model", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="--model-version needs --model"):
        call_command("drift_scan", "--model-version", "1", stdout=StringIO())
    with pytest.raises(CommandError, match="only Production versions"):
        make_version("cmd-model", stage=Stage.STAGING)
        call_command("drift_scan", "--model", "cmd-model", "--model-version", "2", stdout=out)


def test_the_admin_shows_scans_reports_and_thresholds(
    make_version: MakeVersion, admin: Any, client: Any
) -> None:
    make_version()
    scan = drift_scan_all()
    report = DriftReport.objects.get()
    client.force_login(admin)
    for url in (
        "/admin/drift/driftscan/",
        f"/admin/drift/driftscan/{scan.pk}/change/",
        "/admin/drift/driftreport/",
        f"/admin/drift/driftreport/{report.pk}/change/",
        "/admin/drift/driftthresholdoverride/add/",
        "/admin/drift/driftwebhookdelivery/",
    ):
        assert client.get(url).status_code == 200, url
    response = client.post(
        "/admin/drift/driftthresholdoverride/add/",
        {"feature_view_name": "core_technical", "thresholds": '{"psi": [3, 2, 1]}', "note": ""},
    )
    assert response.status_code == 200 and "three ascending" in response.content.decode()
