"""The prediction log: every served prediction becomes a `PredictionLog` row, and each model
version's predictions are announced by `predictions.served` events, off the request path.

PREDICTION_LOG_MODE picks when the rows are written:

- `background` (the production default): a request hands its rows to this process's writer and
  returns. A daemon thread writes what has gathered every FLUSH_INTERVAL_SECONDS (sooner once
  FLUSH_ROWS rows wait): one binary COPY for the whole batch and ONE event per model version,
  counting the batch's requests, symbols and signals, in one transaction. A request never waits
  for the database nor fails because of it: with MAX_QUEUED_ROWS rows already waiting, its rows
  are dropped and counted (`tradingsite_prediction_log_dropped_total{reason="queue_full"}`,
  one WARNING line per DROP_WARNING_SECONDS). A failing write is retried (WRITE_ATTEMPTS in
  all), then its rows are dropped and counted (`reason="write_failed"`) and the thread goes on.
  The writer flushes at interpreter exit (daphne, manage.py commands, uvicorn on SIGINT) and at
  the ASGI lifespan shutdown (`prediction_log_lifespan`): uvicorn, and gunicorn's uvicorn
  workers, end on SIGTERM by re-raising it after their graceful shutdown, which skips atexit.
  Durability: a hard crash (SIGKILL, OOM, power), or a SIGTERM'd uvicorn without the lifespan
  route, loses what is still queued, normally under one flush interval of predictions; drift
  windows, which read the log, then miss them.
- `sync` (the default elsewhere, and in tests): the request writes its own rows and its event in
  one transaction before it answers, as the writer would for a batch of one request.

On PostgreSQL the write commits asynchronously (`synchronous_commit = off` for that transaction
alone): a database crash may lose its last fraction of a second of rows with their events, never
one without the other.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from psycopg import pq
from psycopg.adapt import Dumper

from registry.metrics import (
    PREDICTION_LOG_DROPPED,
    PREDICTION_LOG_FLUSH_SECONDS,
    PREDICTION_LOG_WRITTEN,
)
from registry.models import PredictionLog, Signal
from tradingsite.events import event_publish

logger = logging.getLogger(__name__)

SYNC = "sync"  # PREDICTION_LOG_MODE; the other value is "background"
PREDICTION_EVENT = "predictions.served"
FLUSH_INTERVAL_SECONDS = 0.2
FLUSH_ROWS = 2_000
# About 40 seconds of a busy worker's log at 50 rows per request and 25 requests a second: a
# database outage of that length costs no prediction, a longer one costs the newest ones.
MAX_QUEUED_ROWS = 50_000
WRITE_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 0.5
DROP_WARNING_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 10.0
# An event lists at most this many symbols and request ids; the rows hold every one.
EVENT_LIST_MAX = 100


@dataclass(frozen=True)
class ServedPredictions:
    """What one predict request hands to the log: its rows, as tuples in LOG_COLUMNS order,
    and what its model version's event counts."""

    model_name: str
    version: int
    feature_view: str
    rows: list[tuple[Any, ...]]
    symbols: int
    signals: Counter[str]
    stale: int
    missing: list[str]
    latency_ms: float
    request_id: str
    served_at: datetime


def prediction_log_record(served: ServedPredictions) -> None:
    """Log one request's predictions as PREDICTION_LOG_MODE says (module docstring)."""
    if settings.PREDICTION_LOG_MODE == SYNC:
        prediction_log_write([served])
    else:
        writer.submit(served)


def prediction_log_flush(timeout: float = CLOSE_TIMEOUT_SECONDS) -> bool:
    """Write everything this process has queued so far; False if `timeout` seconds passed
    first. For tests and for commands that must see their rows at once."""
    return writer.flush(timeout=timeout)


# --- writing ----------------------------------------------------------------------------------


def prediction_log_write(batch: list[ServedPredictions]) -> None:
    """The batch's rows (one statement) and one `predictions.served` event per model version,
    in one transaction."""
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if own_transaction and connection.vendor == "postgresql":
            # The log is telemetry: an asynchronous commit skips the WAL flush (~4 ms p50 on
            # this machine's disk); other transactions keep synchronous commits.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        log_rows_write([row for served in batch for row in served.rows])
        for payload in served_payloads(batch):
            event_publish(
                type=PREDICTION_EVENT, subject=f"model:{payload['model']}", payload=payload
            )


def served_payloads(batch: list[ServedPredictions]) -> list[dict[str, Any]]:
    """One event payload per model version of `batch`, in order of first appearance."""
    groups: dict[tuple[str, int], list[ServedPredictions]] = {}
    for served in batch:
        groups.setdefault((served.model_name, served.version), []).append(served)
    return [_payload(group) for group in groups.values()]


def _payload(group: list[ServedPredictions]) -> dict[str, Any]:
    signals: Counter[str] = Counter()
    for served in group:
        signals.update(served.signals)
    latencies = [served.latency_ms for served in group]
    missing = sorted({symbol for served in group for symbol in served.missing})
    first = group[0]
    return {
        "model": first.model_name,
        "version": first.version,
        "feature_view": first.feature_view,
        "requests": len(group),
        "symbols": sum(served.symbols for served in group),  # asked for: predicted + missing
        "predicted": sum(len(served.rows) for served in group),
        "signals": {s.value: signals.get(s.value, 0) for s in Signal},
        "stale": sum(served.stale for served in group),
        "missing": missing[:EVENT_LIST_MAX],
        "latency_ms_mean": round(sum(latencies) / len(latencies), 3),
        "latency_ms_max": round(max(latencies), 3),
        "request_ids": [s.request_id for s in group if s.request_id][:EVENT_LIST_MAX],
        "first_at": min(served.served_at for served in group).isoformat(),
        "last_at": max(served.served_at for served in group).isoformat(),
    }


# On PostgreSQL a binary COPY with declared column types: psycopg's C encoders write the rows,
# where INSERT parameters would make it inspect every float of every feature list to choose an
# adapter (~4 ms for 50 rows x 16 features on this machine). The feature vectors, which psycopg
# would encode float by float in Python, are encoded by numpy beforehand (_float8_arrays):
# the writer's thread shares the interpreter lock with the request threads, so its CPU time
# shows up in their latency tail.
LOG_COLUMNS = (
    "model_version_id", "symbol", "as_of", "features", "probability", "signal", "stale",
    "latency_ms", "request_id", "requested_by_id", "created_at",
)  # fmt: skip
_LOG_COPY_TYPES = (
    "int8", "varchar", "timestamptz", "float8[]", "float8", "varchar", "bool", "float8",
    "varchar", "int4", "timestamptz",
)  # fmt: skip
_FEATURES = LOG_COLUMNS.index("features")
_FLOAT8_OID, _FLOAT8_ARRAY_OID = 701, 1022
# One array element in PostgreSQL's binary form: its length in bytes, then the value.
_FLOAT8_CELL = np.dtype([("length", ">i4"), ("value", ">f8")])


class _EncodedFloat8ArrayDumper(Dumper):
    """float8[] values already in PostgreSQL's binary form, from `_float8_arrays`."""

    format = pq.Format.BINARY
    oid = _FLOAT8_ARRAY_OID

    def dump(self, obj: Any) -> bytes:
        return obj


def _float8_arrays(vectors: list[Any]) -> list[bytes]:
    """Each vector as a binary one-dimensional float8[], the vectors of one length encoded
    together; a missing or non-finite value is NaN, as FloatListField stores it."""
    encoded = [b""] * len(vectors)
    by_length: dict[int, list[int]] = {}
    for i, vector in enumerate(vectors):
        by_length.setdefault(len(vector), []).append(i)
    for length, indexes in by_length.items():
        if length == 0:  # no dimension at all: PostgreSQL's empty array
            for i in indexes:
                encoded[i] = struct.pack(">3i", 0, 0, _FLOAT8_OID)
            continue
        cells = np.empty((len(indexes), length), dtype=_FLOAT8_CELL)
        cells["length"] = 8
        values = np.array([vectors[i] for i in indexes], dtype=float)  # None -> NaN
        values[~np.isfinite(values)] = np.nan  # as FloatListField stores them
        cells["value"] = values
        # dimensions, has-nulls flag, element type, then the one dimension's size and lower bound
        header = struct.pack(">5i", 1, 0, _FLOAT8_OID, length, 1)
        data, size = cells.tobytes(), cells.itemsize * length
        for k, i in enumerate(indexes):
            encoded[i] = header + data[k * size : (k + 1) * size]
    return encoded


def log_rows_write(rows: list[tuple[Any, ...]]) -> None:
    """Write PredictionLog rows given as tuples in LOG_COLUMNS order, in one statement."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        PredictionLog.objects.bulk_create(
            PredictionLog(**dict(zip(LOG_COLUMNS, row, strict=True))) for row in rows
        )
        return
    table = connection.ops.quote_name(PredictionLog._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in LOG_COLUMNS)
    features = _float8_arrays([row[_FEATURES] for row in rows])
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY is not part of the DB-API
        raw.adapters.register_dumper(None, _EncodedFloat8ArrayDumper)  # this cursor only
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_LOG_COPY_TYPES))
            for row, encoded in zip(rows, features, strict=True):
                copy.write_row((*row[:_FEATURES], encoded, *row[_FEATURES + 1 :]))


# --- the background writer --------------------------------------------------------------------


def _rows(batch: Iterable[ServedPredictions]) -> int:
    return sum(len(served.rows) for served in batch)


class PredictionLogWriter:
    """A per-process queue of served predictions and the daemon thread that writes it.

    The thread starts with the first submission in a process (a forked child starts its own,
    with an empty queue: the parent writes what it queued) and holds a database connection of
    its own, closed when it ends. `submit` never blocks on the database and never raises."""

    def __init__(
        self,
        *,
        flush_interval_seconds: float = FLUSH_INTERVAL_SECONDS,
        flush_rows: int = FLUSH_ROWS,
        max_queued_rows: int = MAX_QUEUED_ROWS,
        write_attempts: int = WRITE_ATTEMPTS,
        retry_delay_seconds: float = RETRY_DELAY_SECONDS,
    ) -> None:
        self.flush_interval_seconds = flush_interval_seconds
        self.flush_rows = flush_rows
        self.max_queued_rows = max_queued_rows
        self.write_attempts = write_attempts
        self.retry_delay_seconds = retry_delay_seconds
        self._reset()

    def _reset(self) -> None:
        """Fresh state: at construction, and in a forked child (whose copies of the parent's
        lock and thread are unusable)."""
        self._cond = threading.Condition()
        self._pending: deque[ServedPredictions] = deque()
        self._pending_rows = 0
        self._submitted = 0  # requests accepted into the queue...
        self._finished = 0  # ...and those written or dropped by the writer since
        self._flush_upto = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._dropped_since_warning = 0
        self._last_warning = float("-inf")

    def submit(self, served: ServedPredictions) -> bool:
        """Queue one request's predictions; False (rows dropped and counted) when full."""
        rows = len(served.rows)
        with self._cond:
            refused = ""
            if self._stopping:
                refused = "shutdown"
            elif self._pending_rows + rows > self.max_queued_rows:
                refused = "queue_full"
            else:
                self._pending.append(served)
                self._pending_rows += rows
                self._submitted += 1
                if len(self._pending) == 1 or self._pending_rows >= self.flush_rows:
                    self._cond.notify_all()  # the first to wait starts the interval
                self._ensure_thread()
        if refused:
            self._drop(rows, refused)
        return not refused

    def flush(self, *, timeout: float = CLOSE_TIMEOUT_SECONDS) -> bool:
        """Block until what was submitted before this call is written (or dropped)."""
        with self._cond:
            target = self._submitted
            if self._finished >= target:
                return True
            if self._thread is not None and self._thread.is_alive():
                self._flush_upto = max(self._flush_upto, target)
                self._cond.notify_all()
                return self._cond.wait_for(lambda: self._finished >= target, timeout)
        self._drain()  # no thread to do it (stopped): write in the caller's thread
        return True

    def close(self, *, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Write what is queued and stop the thread (interpreter exit; tests)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning(
                    "prediction log writer still busy after %.0f s at shutdown; %d rows queued",
                    timeout,
                    self._pending_rows,
                )
                return
        self._drain()

    @property
    def queued_rows(self) -> int:
        return self._pending_rows

    def _ensure_thread(self) -> None:
        # Called with self._cond held.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="prediction-log-writer", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    # Idle until something is queued, then gather for up to an interval.
                    self._cond.wait_for(lambda: self._pending or self._stopping)
                    self._cond.wait_for(self._due, timeout=self.flush_interval_seconds)
                    batch = self._take()
                    done = self._stopping and not self._pending
                if batch:
                    self._write(batch)
                if done:
                    return
        finally:
            connections.close_all()  # this thread's connections

    def _due(self) -> bool:
        return (
            self._stopping
            or self._pending_rows >= self.flush_rows
            or (self._flush_upto > self._finished and bool(self._pending))
        )

    def _take(self) -> list[ServedPredictions]:
        """Up to flush_rows rows of queued requests (always at least one request)."""
        batch: list[ServedPredictions] = []
        rows = 0
        while self._pending and (not batch or rows + len(self._pending[0].rows) <= self.flush_rows):
            served = self._pending.popleft()
            batch.append(served)
            rows += len(served.rows)
        self._pending_rows -= rows
        return batch

    def _drain(self) -> None:
        while True:
            with self._cond:
                batch = self._take()
            if not batch:
                return
            self._write(batch)

    def _write(self, batch: list[ServedPredictions]) -> None:
        started = time.perf_counter()
        try:
            self._write_with_retries(batch)
        except Exception:  # a bug, not the database: never let it end the thread
            logger.exception("prediction log write failed; %d rows dropped", _rows(batch))
            PREDICTION_LOG_DROPPED.labels(reason="write_failed").inc(_rows(batch))
        finally:
            PREDICTION_LOG_FLUSH_SECONDS.observe(time.perf_counter() - started)
            with self._cond:
                self._finished += len(batch)
                self._cond.notify_all()

    def _write_with_retries(self, batch: list[ServedPredictions]) -> None:
        for attempt in range(1, self.write_attempts + 1):
            close_old_connections()  # a connection broken by the last error is replaced
            try:
                prediction_log_write(batch)
            except IntegrityError:
                # Not transient: a row names what was deleted since (a user, a version). One
                # request at a time, so that only the offending request's rows are lost.
                if len(batch) > 1:
                    for served in batch:
                        self._write_with_retries([served])
                    return
                self._give_up(batch, "refused by the database (integrity error)")
                return
            except DatabaseError as exc:
                if attempt == self.write_attempts:
                    self._give_up(batch, f"failed {attempt} times, last: {exc}")
                    return
                logger.warning(
                    "prediction log write failed (attempt %d of %d): %s; retrying",
                    attempt,
                    self.write_attempts,
                    exc,
                )
                with self._cond:  # a shutdown does not wait for the delay
                    self._cond.wait_for(lambda: self._stopping, self.retry_delay_seconds * attempt)
            else:
                PREDICTION_LOG_WRITTEN.inc(_rows(batch))
                return

    def _give_up(self, batch: list[ServedPredictions], why: str) -> None:
        rows = _rows(batch)
        PREDICTION_LOG_DROPPED.labels(reason="write_failed").inc(rows)
        logger.error(
            "prediction log write %s; %d rows of %d requests dropped", why, rows, len(batch)
        )

    def _drop(self, rows: int, reason: str) -> None:
        PREDICTION_LOG_DROPPED.labels(reason=reason).inc(rows)
        with self._cond:
            self._dropped_since_warning += rows
            now = time.monotonic()
            if now - self._last_warning < DROP_WARNING_SECONDS:
                return
            dropped, self._dropped_since_warning = self._dropped_since_warning, 0
            self._last_warning = now
        why = (
            "the writer is shutting down"
            if reason == "shutdown"
            else f"the queue is full ({self.max_queued_rows} rows waiting for the database)"
        )
        logger.warning("prediction log: %s; %d rows dropped", why, dropped)


writer = PredictionLogWriter()


async def prediction_log_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI lifespan application (`ProtocolTypeRouter({"lifespan": ...})`): at server
    shutdown, write what is queued. uvicorn (gunicorn's uvicorn workers included) ends a
    process by re-raising SIGTERM once its graceful shutdown is over, so atexit never runs
    there; the lifespan shutdown comes before that, after the last request."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.to_thread(_close_with_own_connection)
            await send({"type": "lifespan.shutdown.complete"})
            return


def _close_with_own_connection() -> None:
    try:
        writer.close()
    finally:
        connections.close_all()  # this thread's, if it had to write what was left


def _close_at_exit() -> None:
    writer.close()


def _reset_after_fork() -> None:
    writer._reset()


atexit.register(_close_at_exit)
os.register_at_fork(after_in_child=_reset_after_fork)
