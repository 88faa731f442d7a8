"""The background prediction log writer (registry.prediction_log): requests queue their rows, a
thread per process writes them in batches with one COPY and one aggregated `predictions.served`
event per model version, drops (and counts) what it cannot keep, and never dies of an error.

The writer's thread has a database connection of its own, so these tests commit for real
(transactional_db): rows written by the thread are not visible inside a test's transaction."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import numpy as np
import pytest
from django.db import OperationalError, connection
from prometheus_client import REGISTRY

from registry import prediction_log
from registry.models import ModelVersion, PredictionLog
from registry.prediction_log import PredictionLogWriter, ServedPredictions
from tradingsite.models import Event

pytestmark = pytest.mark.django_db(transaction=True)
AS_OF = datetime(2026, 1, 5, 21, tzinfo=UTC)
LONG_WAIT = 60.0  # a flush interval no test waits for: only flush(), close() or size flush


def served(
    version: ModelVersion,
    n_rows: int,
    *,
    request_id: str = "req",
    missing: tuple[str, ...] = (),
    version_id: int | None = None,
) -> ServedPredictions:
    """One request's predictions for `version`: `n_rows` long rows of symbols S0, S1, ..."""
    now = datetime.now(UTC)
    rows = [
        (
            version.pk if version_id is None else version_id,
            f"S{i}",
            AS_OF,
            [0.5, float(i)],
            0.75,
            "long",
            False,
            1.5,
            request_id,
            None,
            now,
        )  # fmt: skip
        for i in range(n_rows)
    ]
    return ServedPredictions(
        model_name=version.model.name,
        version=version.version,
        feature_view="reg_view:v1",
        rows=rows,
        symbols=n_rows + len(missing),
        signals=Counter({"long": n_rows}),
        stale=0,
        missing=list(missing),
        latency_ms=1.5,
        request_id=request_id,
        served_at=now,
    )


@pytest.fixture
def make_writer() -> Iterator[Callable[..., PredictionLogWriter]]:
    writers: list[PredictionLogWriter] = []

    def make(**options: Any) -> PredictionLogWriter:
        options.setdefault("flush_interval_seconds", LONG_WAIT)
        writer = PredictionLogWriter(**options)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.close(timeout=10)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except OperationalError:  # the test database (SQLite, shared cache): table locked
            pass
        time.sleep(0.02)
    return condition()


def dropped(reason: str) -> float:
    labels = {"reason": reason}
    return REGISTRY.get_sample_value("tradingsite_prediction_log_dropped_total", labels) or 0.0


def served_events() -> list[Event]:
    return list(Event.objects.filter(type="predictions.served").order_by("id"))


# --- batching ----------------------------------------------------------------------------------


def test_queued_requests_are_written_with_one_copy_and_one_event_per_model_version(
    make_version: Callable[..., ModelVersion], make_writer: Callable[..., PredictionLogWriter]
) -> None:
    v1, v2 = make_version("alpha"), make_version("beta")
    writer = make_writer()
    writer.submit(served(v1, 3, request_id="a1"))
    writer.submit(served(v2, 2, request_id="b1", missing=("NOPE",)))
    writer.submit(served(v1, 1, request_id="a2", missing=("GONE", "NOPE")))
    assert writer.queued_rows == 6 and not PredictionLog.objects.exists()
    with mock.patch.object(
        prediction_log, "log_rows_write", wraps=prediction_log.log_rows_write
    ) as copies:
        assert writer.flush(timeout=10)
    assert copies.call_count == 1 and len(copies.call_args.args[0]) == 6
    assert Counter(PredictionLog.objects.values_list("model_version_id", flat=True)) == {
        v1.pk: 4,
        v2.pk: 2,
    }
    alpha, beta = served_events()
    assert (alpha.subject, beta.subject) == ("model:alpha", "model:beta")
    assert alpha.payload["requests"] == 2 and alpha.payload["request_ids"] == ["a1", "a2"]
    assert (alpha.payload["symbols"], alpha.payload["predicted"]) == (6, 4)
    assert alpha.payload["signals"] == {"long": 4, "short": 0, "flat": 0}
    assert alpha.payload["missing"] == ["GONE", "NOPE"]
    assert alpha.payload["first_at"] <= alpha.payload["last_at"]
    assert (beta.payload["requests"], beta.payload["predicted"], beta.payload["missing"]) == (
        1,
        2,
        ["NOPE"],
    )
    assert writer.queued_rows == 0


def test_the_writer_flushes_on_its_own_every_interval(
    make_version: Callable[..., ModelVersion], make_writer: Callable[..., PredictionLogWriter]
) -> None:
    version = make_version()
    writer = make_writer(flush_interval_seconds=0.05)
    writer.submit(served(version, 2))
    assert wait_until(lambda: PredictionLog.objects.count() == 2)
    writer.submit(served(version, 1))
    assert wait_until(lambda: PredictionLog.objects.count() == 3)
    assert len(served_events()) == 2  # one flush each: the second came after the first flush


def test_the_writer_flushes_early_once_flush_rows_rows_wait(
    make_version: Callable[..., ModelVersion], make_writer: Callable[..., PredictionLogWriter]
) -> None:
    version = make_version()
    writer = make_writer(flush_rows=4)
    writer.submit(served(version, 2))
    time.sleep(0.3)
    assert not PredictionLog.objects.exists()  # below flush_rows, and the interval is long
    writer.submit(served(version, 2))
    assert wait_until(lambda: PredictionLog.objects.count() == 4)
    [event] = served_events()
    assert event.payload["requests"] == 2


def test_a_batch_holds_at_most_flush_rows_rows(
    make_version: Callable[..., ModelVersion], make_writer: Callable[..., PredictionLogWriter]
) -> None:
    version = make_version()
    writer = make_writer(flush_rows=5)
    for _ in range(2):
        writer.submit(served(version, 3))  # 6 rows: past flush_rows, in two batches of 3
    assert writer.flush(timeout=10)
    assert PredictionLog.objects.count() == 6
    assert [e.payload["predicted"] for e in served_events()] == [3, 3]


def test_close_writes_what_is_queued_and_ends_the_thread(
    make_version: Callable[..., ModelVersion], make_writer: Callable[..., PredictionLogWriter]
) -> None:
    version = make_version()
    writer = make_writer()
    writer.submit(served(version, 2))
    thread = writer._thread
    assert thread is not None and thread.is_alive()
    writer.close(timeout=10)
    assert not thread.is_alive()
    assert PredictionLog.objects.count() == 2
    assert not writer.submit(served(version, 1))  # after close: dropped, counted as shutdown


# --- what it cannot keep -------------------------------------------------------------------------


def test_a_full_queue_drops_and_counts_rows_without_blocking_and_warns_once(
    make_version: Callable[..., ModelVersion],
    make_writer: Callable[..., PredictionLogWriter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = make_version()
    writer = make_writer(max_queued_rows=5)
    before = dropped("queue_full")
    with caplog.at_level(logging.WARNING, logger="registry.prediction_log"):
        started = time.perf_counter()
        accepted = [writer.submit(served(version, n)) for n in (3, 3, 2, 1)]
        assert time.perf_counter() - started < 0.5
    assert accepted == [True, False, True, False]
    assert dropped("queue_full") == before + 4
    warnings = [r for r in caplog.records if "rows dropped" in r.getMessage()]
    assert len(warnings) == 1 and "queue is full" in warnings[0].getMessage()
    assert writer.flush(timeout=10)
    assert PredictionLog.objects.count() == 5


def test_a_database_error_is_retried_and_the_batch_then_written(
    make_version: Callable[..., ModelVersion],
    make_writer: Callable[..., PredictionLogWriter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = make_version()
    writer = make_writer(retry_delay_seconds=0.01)
    real = prediction_log.prediction_log_write
    failures = iter([OperationalError("server closed the connection")])

    def flaky(batch: list[ServedPredictions]) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        real(batch)

    with (
        caplog.at_level(logging.WARNING, logger="registry.prediction_log"),
        mock.patch.object(prediction_log, "prediction_log_write", side_effect=flaky) as write,
    ):
        writer.submit(served(version, 2))
        assert writer.flush(timeout=10)
    assert write.call_count == 2
    assert PredictionLog.objects.count() == 2 and len(served_events()) == 1
    assert "attempt 1 of 3" in caplog.text


def test_a_batch_the_database_keeps_refusing_is_dropped_and_the_writer_goes_on(
    make_version: Callable[..., ModelVersion],
    make_writer: Callable[..., PredictionLogWriter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = make_version()
    writer = make_writer(retry_delay_seconds=0.01, write_attempts=3)
    before = dropped("write_failed")
    down = OperationalError("could not connect to server")
    with (
        caplog.at_level(logging.WARNING, logger="registry.prediction_log"),
        mock.patch.object(prediction_log, "prediction_log_write", side_effect=down) as write,
    ):
        writer.submit(served(version, 3))
        assert writer.flush(timeout=10)
    assert write.call_count == 3
    assert dropped("write_failed") == before + 3
    assert "failed 3 times" in caplog.text and "3 rows of 1 requests dropped" in caplog.text
    writer.submit(served(version, 1))  # the same thread, still alive, writes the next batch
    assert writer.flush(timeout=10)
    assert PredictionLog.objects.count() == 1


def test_an_unexpected_error_drops_the_batch_but_not_the_thread(
    make_version: Callable[..., ModelVersion],
    make_writer: Callable[..., PredictionLogWriter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = make_version()
    writer = make_writer()
    before = dropped("write_failed")
    with mock.patch.object(prediction_log, "prediction_log_write", side_effect=TypeError("bug")):
        writer.submit(served(version, 2))
        assert writer.flush(timeout=10)
    assert dropped("write_failed") == before + 2 and "prediction log write failed" in caplog.text
    thread = writer._thread
    writer.submit(served(version, 1))
    assert writer.flush(timeout=10)
    assert writer._thread is thread and PredictionLog.objects.count() == 1


def test_rows_the_database_refuses_cost_only_their_own_request(
    make_version: Callable[..., ModelVersion], make_writer: Callable[..., PredictionLogWriter]
) -> None:
    version = make_version()
    writer = make_writer()
    before = dropped("write_failed")
    writer.submit(served(version, 2, request_id="good-1"))
    writer.submit(served(version, 3, request_id="deleted", version_id=version.pk + 1000))
    writer.submit(served(version, 1, request_id="good-2"))
    assert writer.flush(timeout=10)
    assert sorted(PredictionLog.objects.values_list("request_id", flat=True)) == [
        "good-1",
        "good-1",
        "good-2",
    ]
    assert dropped("write_failed") == before + 3


def test_feature_vectors_of_any_length_are_logged_exactly(
    make_version: Callable[..., ModelVersion], make_writer: Callable[..., PredictionLogWriter]
) -> None:
    version = make_version()
    vectors = [
        [0.1, -0.0, 1e-300, 123456.789],
        [math.nan, 2.5, None, -7.25],
        [math.inf, 1.0],  # non-finite values are stored as NaN, as FloatListField does
        [],
        [1 / 3],
    ]
    request = served(version, len(vectors))
    rows = [(*row[:3], vector, *row[4:]) for row, vector in zip(request.rows, vectors, strict=True)]
    writer = make_writer()
    writer.submit(dataclasses.replace(request, rows=rows))
    assert writer.flush(timeout=10)
    with connection.cursor() as cursor:  # as stored: the field's reading would hide an inf
        cursor.execute("SELECT symbol, features FROM registry_predictionlog")
        stored = {
            symbol: json.loads(value) if isinstance(value, str) else value
            for symbol, value in cursor.fetchall()
        }
        if connection.vendor == "postgresql":  # arrays as the ORM writes them: from index 1
            cursor.execute("SELECT DISTINCT array_lower(features, 1) FROM registry_predictionlog")
            assert {bound for (bound,) in cursor.fetchall()} == {1, None}  # None: the empty one
    expected = [[math.nan if v is None or not math.isfinite(v) else v for v in x] for x in vectors]
    for i, vector in enumerate(expected):
        assert len(stored[f"S{i}"]) == len(vector)
        np.testing.assert_array_equal(np.array(stored[f"S{i}"], dtype=float), vector)


# --- the mode switch ------------------------------------------------------------------------------


def test_sync_mode_writes_at_once_and_background_mode_queues(
    make_version: Callable[..., ModelVersion],
    make_writer: Callable[..., PredictionLogWriter],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = make_version()
    writer = make_writer()
    monkeypatch.setattr(prediction_log, "writer", writer)
    settings.PREDICTION_LOG_MODE = "sync"
    prediction_log.prediction_log_record(served(version, 2))
    assert PredictionLog.objects.count() == 2 and writer.queued_rows == 0
    settings.PREDICTION_LOG_MODE = "background"
    prediction_log.prediction_log_record(served(version, 3))
    assert PredictionLog.objects.count() == 2 and writer.queued_rows == 3
    assert prediction_log.prediction_log_flush(timeout=10)
    assert PredictionLog.objects.count() == 5


def test_the_asgi_lifespan_shutdown_writes_what_is_queued(
    make_version: Callable[..., ModelVersion],
    make_writer: Callable[..., PredictionLogWriter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = make_version()
    writer = make_writer()
    monkeypatch.setattr(prediction_log, "writer", writer)
    writer.submit(served(version, 2))
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            assert writer.queued_rows == 2  # written at shutdown, not before

    asyncio.run(prediction_log.prediction_log_lifespan({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert PredictionLog.objects.count() == 2 and writer._thread is not None
    assert not writer._thread.is_alive()
