"""Drift scans of Production versions: reference statistics from training vs the recent window
of materialized features; one report per (version, window)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pandas as pd
import pytest
from django.core.management import call_command

from drift.models import DriftReport
from drift.services import DriftScanError, drift_scan_all, drift_scan_version
from drift.tasks import drift_scan_all_task
from experiments.train import model_train
from features.demo import DEMO_SYMBOLS, demo_bars, late_regime_first_bar
from features.services import bars_upsert
from features.store import feature_view_ensure_default
from registry.services import model_version_create_from_run, version_transition
from tradingsite.models import Event

pytestmark = pytest.mark.django_db
SYMBOLS = DEMO_SYMBOLS[:3]
N_BARS = 800


def _production_version(bars: pd.DataFrame, admin: Any, *, train_end: pd.Timestamp) -> Any:
    bars_upsert(frame=bars, timeframe="1d")
    feature_view_ensure_default()
    run = model_train(symbols=list(SYMBOLS), end=train_end.to_pydatetime(), n_folds=3)
    version = model_version_create_from_run(model_name="scan-test", run=run, user=admin)
    version_transition(
        version=version,
        to_stage="Production",
        actor=admin,
        reason="test",
        override_justification="test model, no edge expected",
    )
    version.refresh_from_db()
    return version


@pytest.fixture
def admin(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("boss", "b@example.com", "pw-Long-enough-1")


@pytest.fixture
def regime_change(admin: Any) -> Any:
    """Trained on bars before the demo's late regime; the recent window is inside it."""
    bars = demo_bars(symbols=SYMBOLS, n_bars=N_BARS)
    first_late = bars.groupby("symbol")["ts"].apply(
        lambda ts: ts.sort_values().iloc[late_regime_first_bar(len(ts))]
    )
    return _production_version(bars, admin, train_end=first_late.min() - pd.Timedelta(days=1))


def test_the_late_regime_change_is_reported_as_medium_or_high(regime_change: Any) -> None:
    scan = drift_scan_all(trigger="test")
    report = DriftReport.objects.get()
    assert scan.reports_created == 1 and report.model_version == regime_change
    assert report.severity in {"MEDIUM", "HIGH"}, (report.severity, report.share_drifted)
    assert report.window_end > report.window_start
    assert report.source == "features" and report.n_rows > 0 and report.scan == scan
    assert "scan-test v1" in scan.detail
    assert Event.objects.filter(type="drift.report.created").count() == 1
    features = list(report.features.all())
    assert [f.name for f in features] == list(regime_change.feature_view.feature_names)
    assert sum(f.drifted for f in features) == report.n_features_drifted > 0
    for feature in features:
        assert feature.statistics["name"] == feature.name
        assert feature.statistics["psi"] == feature.psi
        assert set(feature.statistics["histogram"]) >= {"reference", "current"}
    # the trainer stores its predictions on the training rows; the scan runs the served model
    assert regime_change.reference_statistics["prediction"]["summary"]["count"] > 0
    assert report.prediction_severity in {"NONE", "LOW", "MEDIUM", "HIGH"}, report.prediction_reason
    assert report.prediction_statistics["n_cur"] == report.n_rows


def test_a_window_is_reported_once(regime_change: Any) -> None:
    first = drift_scan_all(trigger="test")
    second = drift_scan_all(trigger="test")
    assert (first.reports_created, second.reports_created) == (1, 0)
    assert "already reported" in second.detail
    assert DriftReport.objects.count() == 1


def test_a_version_without_reference_statistics_is_named_not_skipped(regime_change: Any) -> None:
    regime_change.reference_statistics = None
    regime_change.save(update_fields=["reference_statistics"])
    scan = drift_scan_all(trigger="test")
    assert scan.reports_created == 0
    assert "scan-test v1: no reference statistics" in scan.detail
    with pytest.raises(DriftScanError):
        drift_scan_version(regime_change)


def test_the_demo_bootstrap_and_its_first_scan_report_the_regime_change(
    api_client: Any, settings: Any, tmp_path: Any
) -> None:
    """`make run`: bootstrap_demo, then the worker's startup scan; the API shows the report."""
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    call_command("bootstrap_demo", stdout=StringIO())
    assert drift_scan_all_task(trigger="startup") is not None
    report = DriftReport.objects.get()
    assert report.severity in {"MEDIUM", "HIGH"} and report.features.count() > 0
    listed = api_client.get("/api/v1/drift/reports?model=next-bar-direction").json()
    assert [r["id"] for r in listed["results"]] == [report.pk]
    detail = api_client.get(f"/api/v1/drift/reports/{report.pk}").json()
    assert len(detail["features"]) == report.features.count()
