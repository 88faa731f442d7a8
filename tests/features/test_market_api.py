"""POST/GET /api/v1/market/bars and GET /api/v1/market/symbols."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from features import constants
from features.models import Bar
from tradingsite.models import Event

pytestmark = pytest.mark.django_db
BARS = "/api/v1/market/bars"
START = datetime(2024, 1, 1, 21, tzinfo=UTC)


def _bars(count: int, *, close: float = 10.5) -> list[dict[str, Any]]:
    return [
        {
            "ts": (START + timedelta(days=day)).isoformat(),
            "open": 10.0,
            "high": 11.0,
            "low": 9.5,
            "close": close,
            "volume": 100 + day,
        }
        for day in range(count)
    ]


def _ingest(client: APIClient, bars: list[dict[str, Any]], **body: Any) -> Any:
    return client.post(
        BARS, {"symbol": "AAPL", "timeframe": "1d", "bars": bars, **body}, format="json"
    )


def test_ingest_creates_the_bars(api_client: APIClient) -> None:
    response = _ingest(api_client, _bars(3))
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 3, "updated": 0}
    bar = Bar.objects.get(symbol="AAPL", timeframe="1d", ts=START)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (10.0, 11.0, 9.5, 10.5, 100.0)


def test_ingesting_again_updates_instead_of_duplicating(api_client: APIClient) -> None:
    _ingest(api_client, _bars(3))
    response = _ingest(api_client, _bars(4, close=10.75))
    assert response.json() == {"created": 1, "updated": 3}
    assert Bar.objects.count() == 4
    assert set(Bar.objects.values_list("close", flat=True)) == {10.75}


def test_bars_may_carry_their_own_symbol(api_client: APIClient) -> None:
    bars = [{**bar, "symbol": symbol} for symbol in ("AAPL", "MSFT") for bar in _bars(2)]
    response = api_client.post(BARS, {"timeframe": "1h", "bars": bars}, format="json")
    assert response.json() == {"created": 4, "updated": 0}
    assert Bar.objects.filter(symbol="MSFT", timeframe="1h").count() == 2


def test_an_ingest_publishes_one_event(api_client: APIClient) -> None:
    _ingest(api_client, _bars(3))
    event = Event.objects.get(type="features.bars.ingested")
    assert event.payload["symbols"] == ["AAPL"]
    assert event.payload["timeframe"] == "1d"
    assert event.payload["rows"] == 3
    assert event.payload["first_ts"] == START.isoformat()
    assert event.payload["last_ts"] == (START + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"high": 9.0}, "row 3: high < low"),
        ({"volume": -1}, "row 3: negative volume"),
        ({"close": "NaN"}, "row 3: close is not a finite number"),
        ({"ts": "2024-01-02T21:00:00+00:00"}, "row 3: duplicate ts"),
        ({"ts": "not a time"}, "row 3: ts 'not a time' is not an ISO 8601"),
        ({"colour": "red"}, "row 3: unknown column 'colour'"),
    ],
)
def test_a_bad_bar_refuses_the_payload_and_names_its_row(
    api_client: APIClient, change: dict[str, Any], message: str
) -> None:
    _ingest(api_client, _bars(1))
    bars = _bars(4)
    bars[2].update(change)
    response = _ingest(api_client, bars)
    assert response.status_code == 400
    assert response.json()["row"] == 3
    assert response.json()["detail"].startswith(message)
    assert Bar.objects.count() == 1
    assert Event.objects.filter(type="features.bars.ingested").count() == 1


def test_a_payload_without_any_symbol_is_refused(api_client: APIClient) -> None:
    response = api_client.post(BARS, {"timeframe": "1d", "bars": _bars(2)}, format="json")
    assert response.status_code == 400
    assert "symbol is required" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"), [({"timeframe": "daily"}, "timeframe"), ({"bars": []}, "bars")]
)
def test_a_malformed_payload_gets_a_400_naming_the_field(
    api_client: APIClient, body: dict[str, Any], field: str
) -> None:
    response = api_client.post(
        BARS, {"symbol": "AAPL", "timeframe": "1d", "bars": _bars(1), **body}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()


def test_more_bars_than_the_limit_are_refused(api_client: APIClient) -> None:
    bar = _bars(1)[0]
    response = _ingest(api_client, [bar] * (constants.MAX_BARS_PER_REQUEST + 1))
    assert response.status_code == 400
    assert "at most 50000 bars" in response.json()["bars"][0]
    assert Bar.objects.count() == 0


def test_symbols_lists_each_series_with_its_span(api_client: APIClient) -> None:
    _ingest(api_client, _bars(3))
    _ingest(api_client, _bars(2), timeframe="1h")
    _ingest(api_client, _bars(1), symbol="MSFT")
    body = api_client.get("/api/v1/market/symbols").json()
    assert body["count"] == 3
    assert body["results"][0] == {
        "symbol": "AAPL",
        "timeframe": "1d",
        "bars": 3,
        "first_ts": "2024-01-01T21:00:00Z",
        "last_ts": "2024-01-03T21:00:00Z",
    }
    assert [(r["symbol"], r["timeframe"]) for r in body["results"]] == [
        ("AAPL", "1d"),
        ("AAPL", "1h"),
        ("MSFT", "1d"),
    ]


def test_bars_are_paginated_in_time_order(api_client: APIClient) -> None:
    _ingest(api_client, _bars(5))
    body = api_client.get(f"{BARS}?symbol=AAPL&limit=2&offset=2").json()
    assert body["count"] == 5
    assert [bar["volume"] for bar in body["results"]] == [102.0, 103.0]
    assert body["next"] is not None


def test_bars_are_filtered_by_an_inclusive_time_range(api_client: APIClient) -> None:
    _ingest(api_client, _bars(5))
    _ingest(api_client, _bars(5), symbol="MSFT")
    body = api_client.get(
        f"{BARS}?symbol=AAPL&timeframe=1d&start=2024-01-02T21:00:00Z&end=2024-01-04T21:00:00Z"
    ).json()
    assert [bar["ts"] for bar in body["results"]] == [
        "2024-01-02T21:00:00Z",
        "2024-01-03T21:00:00Z",
        "2024-01-04T21:00:00Z",
    ]
    assert {bar["symbol"] for bar in body["results"]} == {"AAPL"}


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("timeframe=1d", "symbol"),
        ("symbol=AAPL&timeframe=daily", "timeframe"),
        ("symbol=AAPL&start=last-tuesday", "start"),
        ("symbol=AAPL&end=2024-02-30", "end"),
        ("symbol=AAPL&start=2024-02-02&end=2024-02-01", "end"),
    ],
)
def test_a_bad_query_gets_a_400_naming_the_parameter(
    api_client: APIClient, query: str, parameter: str
) -> None:
    response = api_client.get(f"{BARS}?{query}")
    assert response.status_code == 400
    assert parameter in response.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", f"{BARS}?symbol=AAPL"), ("post", BARS), ("get", "/api/v1/market/symbols")],
)
def test_anonymous_requests_are_refused(method: str, path: str) -> None:
    assert getattr(APIClient(), method)(path, {}, format="json").status_code == 401
