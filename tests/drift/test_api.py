"""The drift API: reports with filters, details, histograms, the per-feature timeline, the
monitor, and on-demand scans (permission, quota, 202 + status)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from drift.models import DriftReport, DriftScan
from drift.services import drift_scan_version
from registry.models import ModelVersion, Stage
from tests.drift.conftest import FEATURES, FIRST_DAY, client_for, rows_add

pytestmark = pytest.mark.django_db
MakeVersion = Callable[..., ModelVersion]
READ_ROUTES = [
    "/api/v1/drift/reports",
    "/api/v1/drift/reports/1",
    "/api/v1/drift/reports/1/histograms",
    "/api/v1/drift/timeline?model=x",
    "/api/v1/drift/monitor",
    "/api/v1/drift/scans",
    "/api/v1/drift/scans/1",
]


@pytest.fixture
def reports(make_version: MakeVersion, settings: Any) -> dict[str, list[DriftReport]]:
    """drifty v1: three HIGH reports in a row (the third escalated); calm v1: one quiet one."""
    settings.DRIFT_WINDOW_BARS = 30
    settings.DRIFT_ESCALATE_AFTER = 3
    drifty = make_version("drifty")
    made = [drift_scan_version(drifty).report]
    day = FIRST_DAY + timedelta(days=60)
    for n in range(2):
        day = rows_add(drifty.feature_view, start=day, days=10, shift=3.0, seed=20 + n)
        made.append(drift_scan_version(drifty).report)
    calm = drift_scan_version(make_version("calm", shift=0.0)).report
    return {"drifty": made, "calm": [calm]}


def test_every_drift_route_refuses_anonymous_callers() -> None:
    client = Client()
    for route in READ_ROUTES:
        assert client.get(route).status_code == 401, route
    assert client.post("/api/v1/drift/scan", {}).status_code == 401


def test_reports_are_listed_newest_first_with_filters(
    api_client: Any, reports: dict[str, list[DriftReport]]
) -> None:
    drifty, calm = reports["drifty"], reports["calm"][0]

    def ids(query: str = "") -> list[int]:
        response = api_client.get(f"/api/v1/drift/reports{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert set(ids()) == {r.pk for r in [*drifty, calm]}
    assert ids("?model=drifty") == [r.pk for r in reversed(drifty)]
    assert ids("?model=drifty&version=1") == ids("?model=drifty")
    assert ids("?model=drifty&version=2") == []
    assert ids("?severity=HIGH") == [r.pk for r in reversed(drifty)]
    assert ids(f"?severity={calm.severity}&model=calm") == [calm.pk]
    assert ids("?min_severity=HIGH") == ids("?severity=HIGH")
    assert ids("?escalated=true") == [drifty[2].pk]
    assert ids(f"?model=drifty&since={drifty[1].window_end.isoformat()}".replace("+", "%2B")) == [
        drifty[2].pk, drifty[1].pk,
    ]  # fmt: skip
    until = drifty[0].window_end.isoformat().replace("+", "%2B")
    assert ids(f"?model=drifty&until={until}") == [drifty[0].pk]
    page = api_client.get("/api/v1/drift/reports?limit=2&offset=1").json()
    assert page["count"] == 4 and len(page["results"]) == 2
    row = api_client.get("/api/v1/drift/reports?model=calm").json()["results"][0]
    assert row["model"] == "calm" and row["version"] == 1 and row["source"] == "features"
    assert row["n_features_tested"] == 3 and row["feature_view"].endswith("v1")


def test_bad_report_filters_are_400s(api_client: Any) -> None:
    for query in ("severity=HUGE", "version=1", "min_severity=x", "since=yesterday"):
        response = api_client.get(f"/api/v1/drift/reports?{query}")
        assert response.status_code == 400, query


def test_a_report_detail_has_every_feature_and_its_thresholds(
    api_client: Any, reports: dict[str, list[DriftReport]]
) -> None:
    report = reports["drifty"][0]
    body = api_client.get(f"/api/v1/drift/reports/{report.pk}").json()
    assert body["severity"] == "HIGH" and body["thresholds"]["psi"] == [0.1, 0.2, 0.25]
    assert [f["name"] for f in body["features"]] == FEATURES
    feature = body["features"][0]
    assert feature["drifted"] and feature["psi"] == feature["statistics"]["psi"]
    assert "histogram" not in feature["statistics"] and "p_value" in feature["statistics"]
    assert api_client.get("/api/v1/drift/reports/999999").status_code == 404


def test_histograms_compare_reference_and_current_per_bin(
    api_client: Any, reports: dict[str, list[DriftReport]]
) -> None:
    report = reports["drifty"][0]
    body = api_client.get(f"/api/v1/drift/reports/{report.pk}/histograms").json()
    assert body["report_id"] == report.pk and [f["name"] for f in body["features"]] == FEATURES
    chart = body["features"][0]
    assert chart["kind"] == "numeric" and chart["categories"] is None
    assert len(chart["bins"]) == len(chart["edges"]) + 1 == len(chart["reference"]["counts"])
    assert chart["bins"][0].startswith("< ") and chart["bins"][-1].startswith("≥ ")
    assert sum(chart["reference"]["counts"]) == 400 and sum(chart["current"]["counts"]) == 60
    assert sum(chart["current"]["shares"]) == pytest.approx(1.0)
    assert chart["current"]["shares"][-1] > 0.5  # shifted by 3 stds: most in the top bin
    # (the window is DRIFT_WINDOW_BARS = 30 days of 2 symbols)
    one = api_client.get(f"/api/v1/drift/reports/{report.pk}/histograms?feature=beta").json()
    assert [f["name"] for f in one["features"]] == ["beta"]


def test_the_timeline_gives_each_feature_across_reports(
    api_client: Any, reports: dict[str, list[DriftReport]]
) -> None:
    drifty = reports["drifty"]
    body = api_client.get("/api/v1/drift/timeline?model=drifty").json()
    assert [r["report_id"] for r in body["reports"]] == [r.pk for r in drifty]  # oldest first
    assert sorted(body["features"]) == FEATURES
    points = body["features"]["alpha"]
    assert [p["report_id"] for p in points] == [r.pk for r in drifty]
    assert all(p["severity"] == "HIGH" and p["severity_rank"] == 3 for p in points)
    assert all(p["psi"] > 0.25 and p["p_value_corrected"] < 0.05 for p in points)
    narrow = api_client.get("/api/v1/drift/timeline?model=drifty&feature=beta&limit=2").json()
    assert list(narrow["features"]) == ["beta"]
    assert [p["report_id"] for p in narrow["features"]["beta"]] == [r.pk for r in drifty[1:]]
    assert api_client.get("/api/v1/drift/timeline?model=nobody").json()["reports"] == []
    assert api_client.get("/api/v1/drift/timeline").status_code == 400
    assert api_client.get("/api/v1/drift/timeline?model=drifty&limit=5000").status_code == 400


def test_the_monitor_and_ml_status_show_the_latest_reports(
    api_client: Any, reports: dict[str, list[DriftReport]]
) -> None:
    monitor = api_client.get("/api/v1/drift/monitor").json()
    assert monitor["models_watched"] == ["calm:v1", "drifty:v1"]
    assert monitor["open_high_drift"] == ["drifty:v1"]
    latest = {r["model"]: r for r in monitor["latest_reports"]}
    assert latest["drifty"]["report_id"] == reports["drifty"][-1].pk
    assert latest["drifty"]["escalated"] is True
    status = api_client.get("/api/v1/ml/status").json()["drift_monitor"]
    assert status["open_high_drift"] == ["drifty:v1"]
    assert status["interval_seconds"] == 3600 and status["last_scan"] is None


def test_an_on_demand_scan_needs_the_permission(api_client: Any, make_version: MakeVersion) -> None:
    make_version()
    response = api_client.post("/api/v1/drift/scan", {}, format="json")
    assert response.status_code == 403
    assert "drift.run_scan" in response.json()["detail"]
    assert not DriftScan.objects.exists()


def test_an_on_demand_scan_is_accepted_and_followed_to_its_reports(
    scanner: Any, make_version: MakeVersion, django_capture_on_commit_callbacks: Any
) -> None:
    make_version("one")
    make_version("two")
    client = client_for(scanner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/drift/scan", {"model": "one"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == body["status_url"] == f"/api/v1/drift/scans/{body['id']}"
    assert body["trigger"] == "api" and body["requested_by"] == "scanner"
    status = client.get(body["status_url"]).json()
    assert status["status"] == "complete" and status["reports_created"] == 1
    assert [(i["model"], i["outcome"], i["severity"]) for i in status["items"]] == [
        ("one", "created", "HIGH"),
    ]
    assert body["report_ids"] in ([], [status["items"][0]["report_id"]])
    listed = client.get("/api/v1/drift/scans").json()["results"]
    assert [s["id"] for s in listed] == [body["id"]]


def test_an_on_demand_scan_names_what_it_cannot_scan(
    scanner: Any, make_version: MakeVersion
) -> None:
    make_version("staged", stage=Stage.STAGING)
    client = client_for(scanner)

    def post(body: dict[str, Any]) -> tuple[int, str]:
        response = client.post("/api/v1/drift/scan", body, format="json")
        return response.status_code, response.json().get("code", "")

    assert post({"model": "nope"}) == (404, "not_found")
    assert post({"model": "staged"}) == (409, "not_in_production")
    assert post({"model": "staged", "version": 1}) == (409, "not_in_production")
    assert post({"model": "staged", "version": 7}) == (404, "not_found")
    assert post({"version": 1})[0] == 400
    assert post({"model": "x" * 500})[0] == 400


def test_on_demand_scans_are_limited_per_user(
    scanner: Any, admin: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.DRIFT_SCAN_QUOTA = "2/3600"
    client = client_for(scanner)
    with django_capture_on_commit_callbacks(execute=True):
        codes = [client.post("/api/v1/drift/scan", {}, format="json") for _ in range(3)]
    assert [r.status_code for r in codes] == [202, 202, 429]
    assert 1 <= int(codes[2]["Retry-After"]) <= 3600
    assert codes[2].json()["code"] == "rate_limited"
    metrics = Client().get("/metrics").content.decode()
    assert 'tradingsite_drift_scan_requests_total{outcome="rate_limited"}' in metrics
    assert client_for(admin).post("/api/v1/drift/scan", {}, format="json").status_code == 202


def test_the_dashboard_selectors_give_latest_reports_and_the_severity_timeline(
    reports: dict[str, list[DriftReport]],
) -> None:
    from drift.selectors import drift_reports_latest, drift_severity_timeline

    drifty = reports["drifty"]
    latest = drift_reports_latest(version_ids=[drifty[0].model_version_id])
    assert latest == {drifty[0].model_version_id: drifty[-1]}
    rows = drift_severity_timeline(days=30, now=drifty[-1].window_end)
    assert [r["report_id"] for r in rows if r["model"] == "drifty"] == [r.pk for r in drifty]
    assert rows[0].keys() == {"report_id", "model", "version", "at", "severity"}
