"""One version's report: stored with every feature's statistics in one transaction, graded with
the feature view's thresholds, alerting and escalating on HIGH, read by the promotion policy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from drift.models import (
    DriftFeatureResult,
    DriftReport,
    DriftScan,
    DriftThresholdOverride,
    DriftWebhookDelivery,
)
from drift.selectors import open_high_drift
from drift.services import DriftScanError, drift_scan_all, drift_scan_version
from drift.severity import DriftReport as StatisticsReport
from registry.models import ModelVersion, Stage
from registry.services import policy_check
from tests.drift.conftest import FEATURES, FIRST_DAY, rows_add
from tradingsite.models import Event

pytestmark = pytest.mark.django_db
MakeVersion = Callable[..., ModelVersion]


def test_a_shifted_window_is_a_high_report_with_one_row_per_feature(
    make_version: MakeVersion,
) -> None:
    version = make_version(shift=3.0)
    scan = drift_scan_version(version)
    report = scan.report
    assert scan.created and report is not None
    assert report.severity == "HIGH" and report.share_drifted == 1.0
    assert (report.n_features_tested, report.n_features_drifted) == (3, 3)
    assert report.n_rows == 2 * 60 and report.symbols == ["AAA", "BBB"]
    assert report.source == "features" and report.thresholds["alpha"] == 0.05
    rows = list(report.features.order_by("id"))
    assert [row.name for row in rows] == FEATURES
    for row in rows:
        assert row.severity == "HIGH" and row.drifted
        assert row.psi == row.statistics["psi"] > 0.25
        assert row.ks_statistic == row.statistics["ks_statistic"]
        assert row.p_value_corrected == row.statistics["p_value_corrected"] < 0.05
        assert row.wasserstein_normed == pytest.approx(3.0, abs=0.5)
        hist = row.statistics["histogram"]
        assert sum(hist["current"]) == 120 and sum(hist["reference"]) == 400


def test_every_statistics_field_is_kept_including_new_ones(
    make_version: MakeVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """drift.statistics may add fields (n_cur_effective, ...): they are stored, no migration."""
    original = StatisticsReport.as_dict

    def with_a_new_field(self: StatisticsReport) -> dict[str, Any]:
        data = original(self)
        for feature in data["features"]:
            feature["brand_new_statistic"] = 0.5
        return data

    monkeypatch.setattr(StatisticsReport, "as_dict", with_a_new_field)
    report = drift_scan_version(make_version()).report
    assert report is not None
    row = report.features.first()
    assert row.statistics["brand_new_statistic"] == 0.5
    assert {"p_value", "n_cur", "null_share_cur", "severity", "histogram"} <= set(row.statistics)


def test_an_unchanged_window_is_not_high_and_raises_no_alert(make_version: MakeVersion) -> None:
    report = drift_scan_version(make_version(shift=0.0)).report
    assert report is not None and report.severity in {"NONE", "LOW"}
    assert not Event.objects.filter(type__startswith="drift.alert").exists()
    assert report.consecutive_high == 0 and not report.escalated


def test_a_failure_after_partial_work_leaves_no_report_and_no_feature_rows(
    make_version: MakeVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker dying between the report row and the rest: nothing of the report is kept."""
    version = make_version()

    def die(**kwargs: Any) -> None:
        assert DriftReport.objects.count() == 1  # the report and its features were written...
        assert DriftFeatureResult.objects.count() == 3
        raise RuntimeError("worker killed")

    monkeypatch.setattr("drift.services.reports.drift_alert_raise", die)
    with pytest.raises(RuntimeError):
        drift_scan_version(version)
    assert DriftReport.objects.count() == 0  # ...and rolled back together
    assert DriftFeatureResult.objects.count() == 0
    assert not Event.objects.filter(topic="drift").exists()

    scan = drift_scan_all()  # the same failure inside a scan: the item says so, the scan fails
    assert scan.status == DriftScan.Status.FAILED and scan.failed == 1
    assert "RuntimeError: worker killed" in scan.detail
    monkeypatch.undo()
    assert drift_scan_version(version).created  # the retry writes the whole report


def test_thresholds_are_configured_per_feature_view(make_version: MakeVersion) -> None:
    version = make_version(view_name="lenient_view")
    DriftThresholdOverride.objects.create(
        feature_view_name="lenient_view",
        thresholds={"psi": [50, 60, 70], "wasserstein_normed": [50, 60, 70]},
    )
    report = drift_scan_version(version).report
    assert report is not None and report.severity == "NONE"
    assert report.thresholds["psi"] == [50, 60, 70]
    per_feature = {"features": {"alpha": {"psi": [0.1, 0.2, 0.3]}}}
    DriftThresholdOverride.objects.filter(feature_view_name="lenient_view").update(
        thresholds={"psi": [50, 60, 70], "wasserstein_normed": [50, 60, 70], **per_feature}
    )
    rows_add(version.feature_view, start=FIRST_DAY + timedelta(days=60), days=5, shift=3.0)
    report = drift_scan_version(version).report
    assert report is not None
    assert {r.name: r.severity for r in report.features.all()} == {
        "alpha": "HIGH", "beta": "NONE", "gamma": "NONE",
    }  # fmt: skip


def test_bad_thresholds_are_refused_by_the_admin_form_and_named_by_a_scan(
    make_version: MakeVersion,
) -> None:
    with pytest.raises(ValidationError, match="three ascending"):
        DriftThresholdOverride(feature_view_name="v", thresholds={"psi": [3, 2, 1]}).full_clean()
    with pytest.raises(ValidationError, match="unknown drift threshold"):
        DriftThresholdOverride(feature_view_name="v", thresholds={"psy": [1, 2, 3]}).full_clean()
    version = make_version(view_name="broken_view")
    DriftThresholdOverride.objects.create(feature_view_name="broken_view", thresholds={"x": 1})
    with pytest.raises(DriftScanError, match="unknown drift threshold 'x'"):
        drift_scan_version(version)


def test_a_high_report_raises_an_alert_and_queues_its_webhooks(
    make_version: MakeVersion, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.DRIFT_WEBHOOK_URLS = ["https://hooks.example.com/a", "https://hooks.example.com/b"]
    sent: list[int] = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = drift_scan_version(make_version()).report
    alert = Event.objects.get(type="drift.alert")
    assert alert.subject == "model:drifty"
    assert alert.payload["report_id"] == report.pk and alert.payload["level"] == "alert"
    assert {f["name"] for f in alert.payload["features_drifted"]} == set(FEATURES)
    deliveries = DriftWebhookDelivery.objects.order_by("url")
    assert [d.url for d in deliveries] == settings.DRIFT_WEBHOOK_URLS
    assert all(d.body["id"] == alert.pk and d.body["type"] == "drift.alert" for d in deliveries)
    import drift.tasks

    original = drift.tasks.drift_webhook_deliver_task.delay
    drift.tasks.drift_webhook_deliver_task.delay = sent.append  # type: ignore[method-assign]
    try:
        for callback in callbacks:
            callback()
    finally:
        drift.tasks.drift_webhook_deliver_task.delay = original  # type: ignore[method-assign]
    assert sorted(sent) == sorted(d.pk for d in deliveries)  # sent only after commit


def test_high_reports_in_a_row_escalate_once(make_version: MakeVersion, settings: Any) -> None:
    settings.DRIFT_ESCALATE_AFTER = 3
    settings.DRIFT_WINDOW_BARS = 30
    version = make_version()
    day = FIRST_DAY + timedelta(days=60)
    reports = [drift_scan_version(version).report]
    for n in range(3):
        day = rows_add(version.feature_view, start=day, days=10, shift=3.0, seed=10 + n)
        reports.append(drift_scan_version(version).report)
    assert [r.consecutive_high for r in reports] == [1, 2, 3, 4]
    assert [r.escalated for r in reports] == [False, False, True, True]
    escalations = Event.objects.filter(type="drift.alert.escalated")
    assert [e.payload["report_id"] for e in escalations] == [reports[2].pk]
    assert Event.objects.filter(type="drift.alert").count() == 4
    assert Event.objects.filter(type="drift.alert").last().payload["level"] == "escalated"

    rows_add(version.feature_view, start=day, days=30, shift=0.0, seed=99)
    calm = drift_scan_version(version).report
    assert calm is not None and calm.severity != "HIGH"
    assert (calm.consecutive_high, calm.escalated) == (0, False)
    assert open_high_drift(model_version=version) is None


def test_the_promotion_policy_reads_the_open_drift_of_a_scan(
    make_version: MakeVersion, admin: Any
) -> None:
    version = make_version()
    report = drift_scan_version(version).report
    assert open_high_drift(model_version=version) == report

    def drift_rule() -> Any:
        check = policy_check(version=version, to_stage=Stage.PRODUCTION, actor=admin)
        return next(r for r in check.results if r.rule == "no_open_high_drift")

    rule = drift_rule()
    assert not rule.passed and f"report {report.pk}" in rule.reason
    settings_days = FIRST_DAY + timedelta(days=60)
    rows_add(version.feature_view, start=settings_days, days=60, shift=0.0, seed=5)
    assert drift_scan_version(version).report.severity != "HIGH"
    assert drift_rule().passed
