"""The live path of the dashboards: the pages' socket is the existing /ws/stream, authenticated
by the session cookie (no token in the page), and materializations publish their progress."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from features.models import FeatureView, MaterializationJob
from features.store import materialization_job_fail, materialize_symbol
from tests.dashboard import seed as demo
from tradingsite.events import event_publish
from tradingsite.models import Event
from tradingsite.routing import websocket_urlpatterns
from tradingsite.security.websocket import stream_edge


def _communicator(cookie: str | None, origin: bytes = b"http://localhost:8000") -> Any:
    headers = [(b"origin", origin)]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    application = stream_edge(URLRouter(websocket_urlpatterns))
    return WebsocketCommunicator(application, "/ws/stream?topics=drift", headers=headers)


def _session_cookie(username: str) -> str:
    client = Client()
    assert client.login(username=username, password=demo.PASSWORD)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.mark.django_db(transaction=True)
def test_a_logged_in_page_connects_with_its_session_and_receives_events() -> None:
    demo.users()
    cookie = _session_cookie(demo.ANALYST)

    async def scenario() -> None:
        communicator = _communicator(cookie)
        connected, _ = await communicator.connect()
        assert connected
        await sync_to_async(event_publish)(
            type="drift.report.created", subject="model:m", payload={"report_id": 1}
        )
        message = await communicator.receive_json_from(timeout=5)
        assert message["type"] == "drift.report.created"
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_without_a_session_or_token_or_from_a_foreign_page_the_socket_is_refused() -> None:
    demo.users()
    cookie = _session_cookie(demo.ANALYST)

    async def refused(communicator: Any) -> None:
        connected, _ = await communicator.connect()
        assert not connected
        await communicator.disconnect()

    async_to_sync(refused)(_communicator(None))
    async_to_sync(refused)(_communicator("sessionid=forged"))
    # a foreign page's socket carries the cookie too: the Origin check stops it
    async_to_sync(refused)(_communicator(cookie, origin=b"https://evil.example"))


@pytest.mark.django_db
def test_each_materialized_symbol_publishes_progress_and_a_failure_is_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pandas as pd

    from features import store

    view = FeatureView.objects.create(name="v", version=1, feature_names=["rsi_14"])
    job = MaterializationJob.objects.create(view=view, symbols=["AAA", "BBB"])
    empty = pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "rsi_14": []})
    monkeypatch.setattr(store, "_materialize_symbol", lambda *a, **k: (empty, 0))
    assert materialize_symbol(job=job, view=view, symbol="AAA") is False
    assert materialize_symbol(job=job, view=view, symbol="BBB") is True
    progress = Event.objects.filter(type="features.materialization.progress").order_by("id")
    assert [(e.payload["symbol"], e.payload["symbols_done"], e.payload["symbols"])
            for e in progress] == [("AAA", 1, 2), ("BBB", 2, 2)]  # fmt: skip
    assert progress[0].subject == "view:v" and progress[0].payload["job_id"] == job.pk
    materialization_job_fail(job, RuntimeError("disk full"), "BBB")
    failed = Event.objects.get(type="features.materialization.failed")
    assert failed.payload["job_id"] == job.pk and "disk full" in failed.payload["error"]
