"""GET /api/v1/events (polling) and outbox retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tradingsite.events import event_publish, events_prune
from tradingsite.models import Event

pytestmark = pytest.mark.django_db


def test_pages_follow_the_after_cursor_in_id_order(api_client: APIClient) -> None:
    ids = [event_publish(type="models.tick", subject=str(i)).id for i in range(5)]
    first = api_client.get("/api/v1/events?limit=3").json()
    assert [e["id"] for e in first["events"]] == ids[:3]
    assert first["has_more"] is True
    second = api_client.get(f"/api/v1/events?after={first['next_after']}&limit=3").json()
    assert [e["id"] for e in second["events"]] == ids[3:]
    assert second["has_more"] is False


def test_topics_and_subject_filter_the_page(api_client: APIClient) -> None:
    event_publish(type="models.version.promoted", subject="model:a")
    wanted = event_publish(type="drift.report.created", subject="model:a")
    event_publish(type="drift.report.created", subject="model:b")
    body = api_client.get("/api/v1/events?topic=drift,features&subject=model:a").json()
    assert [e["id"] for e in body["events"]] == [wanted.id]
    assert body["events"][0]["previous_in_topic"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [("topic=weather", "topic"), ("after=-1", "after"), ("limit=0", "limit"), ("after=x", "after")],
)
def test_bad_queries_get_a_400_naming_the_field(
    api_client: APIClient, query: str, field: str
) -> None:
    response = api_client.get(f"/api/v1/events?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_pruning_drops_old_events_but_keeps_the_newest_of_each_topic() -> None:
    old = [event_publish(type="models.tick") for _ in range(3)]
    recent = event_publish(type="drift.report.created")
    Event.objects.filter(id__in=[e.id for e in old] + [recent.id]).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    fresh = event_publish(type="drift.report.created")
    assert events_prune(older_than_days=30) == 3  # old[0], old[1] and the old drift event
    assert set(Event.objects.values_list("id", flat=True)) == {old[2].id, fresh.id}


def test_publishing_is_counted_in_metrics(api_client: APIClient) -> None:
    event_publish(type="features.view.materialized", subject="view:core_technical")
    text = api_client.get("/metrics").content.decode()
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("tradingsite_events_published_total") and 'topic="features"' in row
    )
    assert float(line.split()[-1]) >= 1
    assert "tradingsite_websocket_clients" in text
