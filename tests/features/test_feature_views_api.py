"""The feature view API: list, detail, materialize, online, historical."""

from __future__ import annotations

import pandas as pd
import pytest
from rest_framework.test import APIClient

from features.demo import demo_bars
from features.services import bars_upsert
from features.store import feature_view_ensure_default
from features.transforms import CORE_TECHNICAL

pytestmark = pytest.mark.django_db(transaction=True)  # materialization runs on commit


@pytest.fixture
def bars() -> pd.DataFrame:
    frame = demo_bars(symbols=("AAA", "BBB"), n_bars=120)
    bars_upsert(frame=frame, timeframe="1d")
    return frame


@pytest.fixture
def view(bars: pd.DataFrame):  # noqa: ANN201
    return feature_view_ensure_default()


def test_features_and_views_are_listed(api_client: APIClient, view) -> None:  # noqa: ANN001
    features = api_client.get("/api/v1/features/").json()["results"]
    assert {f["name"] for f in features} >= set(CORE_TECHNICAL)
    rsi = next(f for f in features if f["name"] == "rsi_14")
    assert (rsi["valid_min"], rsi["valid_max"]) == (0.0, 100.0)
    views = api_client.get("/api/v1/feature-views/").json()["results"]
    assert [(v["name"], v["version"]) for v in views] == [("core_technical", 1)]
    assert views[0]["latest_quality"]["score"] >= 0


def test_the_detail_shows_versions_watermark_and_jobs(api_client: APIClient, view) -> None:  # noqa: ANN001
    body = api_client.get("/api/v1/feature-views/core_technical").json()
    assert body["watermark"] is not None
    assert [v["version"] for v in body["versions"]] == [1]
    assert body["jobs"][0]["status"] == "succeeded"
    assert api_client.get("/api/v1/feature-views/nope").status_code == 404
    assert api_client.get("/api/v1/feature-views/core_technical?version=x").status_code == 400


def test_materialize_starts_a_job_that_can_be_followed(api_client: APIClient, view) -> None:  # noqa: ANN001
    response = api_client.post(
        "/api/v1/feature-views/core_technical/materialize",
        {"mode": "full", "symbols": ["AAA"]},
        format="json",
    )
    assert response.status_code == 202
    job = api_client.get(f"/api/v1/materialization-jobs/{response.json()['id']}").json()
    assert (job["status"], job["rows_written"], job["progress_pct"]) == ("succeeded", 120, 100.0)


def test_materializing_an_unknown_symbol_is_a_400(api_client: APIClient, view) -> None:  # noqa: ANN001
    response = api_client.post(
        "/api/v1/feature-views/core_technical/materialize", {"symbols": ["ZZZ"]}, format="json"
    )
    assert response.status_code == 400
    assert "ZZZ" in response.json()["symbols"]


def test_online_lookup_answers_per_symbol(api_client: APIClient, view) -> None:  # noqa: ANN001
    body = api_client.get("/api/v1/feature-views/core_technical/online?symbols=AAA,ZZZ").json()
    assert body["version"] == 1
    aaa, zzz = body["results"]
    assert set(aaa["values"]) == set(CORE_TECHNICAL)
    assert zzz["values"] is None and zzz["stale"] is True
    assert api_client.get("/api/v1/feature-views/core_technical/online").status_code == 400


def test_historical_returns_point_in_time_rows(api_client: APIClient, view, bars) -> None:  # noqa: ANN001
    ts = bars[bars.symbol == "AAA"]["ts"].iloc[50]
    response = api_client.post(
        "/api/v1/feature-views/core_technical/historical",
        {"entities": [{"symbol": "AAA", "ts": ts.isoformat(), "label": 1}]},
        format="json",
    )
    assert response.status_code == 200
    row = response.json()["rows"][0]
    assert pd.Timestamp(row["feature_ts"]) == ts
    assert row["label"] == 1
    assert set(CORE_TECHNICAL) <= set(row)


def test_historical_rejects_rows_without_a_timestamp(api_client: APIClient, view) -> None:  # noqa: ANN001
    response = api_client.post(
        "/api/v1/feature-views/core_technical/historical",
        {"entities": [{"symbol": "AAA"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "entities" in response.json()
