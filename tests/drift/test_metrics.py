"""/metrics: drift severity per model and feature (what the latest reports say, whichever process
wrote them) and scans by outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from drift.services import drift_scan_all
from registry.models import ModelVersion, Stage

pytestmark = pytest.mark.django_db
MakeVersion = Callable[..., ModelVersion]


def _samples(name: str) -> dict[str, float]:
    text = Client().get("/metrics").content.decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name)
    }


def test_the_severity_gauge_follows_the_latest_reports_of_production_versions(
    make_version: MakeVersion,
) -> None:
    drifting = make_version("drifting")
    make_version("steady", shift=0.0)
    drift_scan_all()
    severity = _samples("tradingsite_drift_severity")
    assert severity['tradingsite_drift_severity{feature="_report",model="drifting"}'] == 3.0
    assert severity['tradingsite_drift_severity{feature="alpha",model="drifting"}'] == 3.0
    assert severity['tradingsite_drift_severity{feature="_report",model="steady"}'] <= 1.0
    ModelVersion.objects.filter(pk=drifting.pk).update(stage=Stage.ARCHIVED)
    assert not [k for k in _samples("tradingsite_drift_severity") if "drifting" in k]


def test_scans_are_counted_by_outcome(
    make_version: MakeVersion, django_capture_on_commit_callbacks: Any
) -> None:
    def count(outcome: str) -> float:
        return _samples("tradingsite_drift_scans_total").get(
            f'tradingsite_drift_scans_total{{outcome="{outcome}"}}', 0.0
        )

    before = {o: count(o) for o in ("created", "duplicate", "skipped")}
    make_version()
    broken = make_version("no-reference")
    ModelVersion.objects.filter(pk=broken.pk).update(reference_statistics=None)
    with django_capture_on_commit_callbacks(execute=True):
        drift_scan_all()
        drift_scan_all()
    assert count("created") == before["created"] + 1
    assert count("duplicate") == before["duplicate"] + 1
    assert count("skipped") == before["skipped"] + 2
