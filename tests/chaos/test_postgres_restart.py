"""reliability.md T6: PostgreSQL stopped (`pg_ctl stop -m fast`) and started again under load.

The production profile (gunicorn + uvicorn workers) serves a PostgreSQL cluster this module
creates (initdb in a temp dir, run as the `postgres` OS user on a free port) and a redis-server
of its own: the shared servers are never touched, so this runs in the embedded pass of
`make test`. An open-loop load (tests.chaos.harness.Load) sends liveness, readiness
(`/api/v1/health`, behind authentication like every API route: a probe sends a token), an
authenticated list, an online feature lookup and a two-bar write on a fixed schedule;
`before_s` into the run the cluster stops, and `outage_s` later it starts again, with no
application process restarted.

Scaled for CI (about 45 s): 5 s before, a 9 s outage, 14 s after, 25 rps. The table's
timeline (30 s before, 30 s outage, 30 s after, 50 rps) runs standalone:

    python -m tests.chaos.test_postgres_restart [--full]

Writes are audited by what the client believes: every write i upserts two bars of its own, so
after the run each write's pair is in the database in full (201, or in flight and committed) or
not at all (refused or rolled back), and every 201 is there.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import requests

from tests.chaos.harness import (
    CLIENT_TIMEOUT_S,
    HTTPS,
    PG_BIN,
    REDIS_SERVER,
    Criterion,
    Load,
    PostgresCluster,
    RedisServer,
    Request,
    Running,
    Sample,
    app_env,
    assert_passed,
    obtain_token,
    percentile,
    prepare_app,
    process_tree,
    report,
    start_app,
    statuses,
    warm_up,
)
from tests.support import ROOT, free_port, postgres_database, stop_process

DBNAME = "tradingsite_chaos_t6"
PASSWORD = "chaos-Restart-pass-66"
WORKERS = 2
CONNECT_TIMEOUT_S = 1  # DB_CONNECT_TIMEOUT_SECONDS for the run (the table's connect_timeout=1)
ANSWER_WITHIN_S = 1.5  # a DB-backed call during the outage is answered (503) this fast
SLOWEST_S = 2.0  # no request of the whole run takes longer
FIRST_SUCCESS_S = 5.0  # after `pg_ctl start`
CLEAN_FROM_S = 10.0  # after `pg_ctl start`: error rate 0 from here on
SYMBOL = "T6W"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
LIVENESS = "health"


@dataclass(frozen=True)
class Timeline:
    before_s: float
    outage_s: float
    after_s: float
    rps: float


CI = Timeline(before_s=5, outage_s=9, after_s=14, rps=25)
FULL = Timeline(before_s=30, outage_s=30, after_s=30, rps=50)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (Path(REDIS_SERVER).exists() and (PG_BIN / "initdb").exists()),
        reason=f"needs {REDIS_SERVER} and PostgreSQL 15 in {PG_BIN}",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="runs initdb/pg_ctl as the postgres user"),
]


@dataclass
class Stack:
    url: str
    cluster: PostgresCluster
    database_url: str
    server: subprocess.Popen
    token: str


@contextlib.contextmanager
def restart_stack(tmp: Path) -> Iterator[Stack]:
    cluster = PostgresCluster(free_port())
    redis = RedisServer(free_port(), tmp / "redis.log")
    server = None
    try:
        cluster.init()
        cluster.start()
        database_url = cluster.url(DBNAME)
        postgres_database(database_url)
        redis.start()
        env = app_env(
            tmp, database_url=database_url, redis_url=redis.url, workers=WORKERS,
            password=PASSWORD, DB_CONNECT_TIMEOUT_SECONDS=str(CONNECT_TIMEOUT_S),
        )  # fmt: skip
        prepare_app(env, ("ops", "--role", "analyst", "--role", "data-engineer"))
        server, url = start_app(env, workers=WORKERS, log=tmp / "server.log")
        stack = Stack(url, cluster, database_url, server,
                      obtain_token(url, "ops", PASSWORD, client_ip="10.0.0.1"))  # fmt: skip
        warm_up(traffic(url, stack.token, rps=1))  # negative write ids: not audited
        yield stack
    finally:
        if server is not None:
            stop_process(server)
        redis.stop()
        cluster.destroy()


def bar_ts(write: int, leg: int) -> datetime:
    """Write `write` upserts bars `2 * write` and `2 * write + 1` minutes after EPOCH."""
    return EPOCH + timedelta(minutes=2 * write + leg)


def traffic(url: str, token: str, rps: float) -> Load:
    headers = {**HTTPS, "X-Forwarded-For": "10.0.0.2", "Authorization": f"Bearer {token}"}

    def get(path: str, *, auth: bool = True) -> Request:
        sent = headers if auth else HTTPS
        return lambda s, _i: s.get(f"{url}{path}", headers=sent, timeout=CLIENT_TIMEOUT_S)

    def write(session: requests.Session, i: int) -> requests.Response:
        bars = [
            {"ts": bar_ts(i, leg).isoformat(), "open": 1, "high": 2, "low": 0.5, "close": 1.5,
             "volume": 10}
            for leg in (0, 1)
        ]  # fmt: skip
        return session.post(
            f"{url}/api/v1/market/bars",
            json={"symbol": SYMBOL, "timeframe": "1m", "bars": bars},
            headers=headers,
            timeout=CLIENT_TIMEOUT_S,
        )

    kinds = {
        LIVENESS: get("/health", auth=False),
        "ready": get("/api/v1/health"),
        "list": get("/api/v1/market/symbols"),
        "online": get(f"/api/v1/feature-views/core_technical/online?symbols={SYMBOL}"),
        "write": write,
    }
    return Load(url, rps, kinds)


EXPECTED = {"write": 201}  # every other kind: 200


@dataclass
class Run:
    timeline: Timeline
    stop_at: float = 0.0  # `pg_ctl stop` called
    stopped_at: float = 0.0  # ... and returned: the cluster is down
    start_at: float = 0.0  # `pg_ctl start` called
    end_at: float = 0.0
    pids_before: set[int] = field(default_factory=set)
    pids_after: set[int] = field(default_factory=set)
    samples: list[Sample] = field(default_factory=list)
    stored: dict[int, int] = field(default_factory=dict)  # write id -> its bars in the database


def run_scenario(stack: Stack, timeline: Timeline) -> Run:
    run = Run(timeline, pids_before=process_tree(stack.server))
    load = traffic(stack.url, stack.token, timeline.rps)
    running = Running(load).start()
    time.sleep(timeline.before_s)
    run.stop_at = time.monotonic()
    stack.cluster.stop("fast")
    run.stopped_at = time.monotonic()
    time.sleep(max(0.0, run.stop_at + timeline.outage_s - time.monotonic()))
    run.start_at = time.monotonic()
    stack.cluster.start()
    time.sleep(max(0.0, run.start_at + timeline.after_s - time.monotonic()))
    running.stop()
    run.end_at = time.monotonic()
    run.samples = list(load.samples)
    run.pids_after = process_tree(stack.server)
    run.stored = stored_writes(stack.database_url)
    return run


def stored_writes(database_url: str) -> dict[int, int]:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT ts FROM features_bar WHERE symbol = %s AND timeframe = '1m' AND ts >= %s",
            [SYMBOL, EPOCH],
        ).fetchall()
    stored: dict[int, int] = {}
    for (ts,) in rows:
        write = int((ts - EPOCH).total_seconds() // 60) // 2
        stored[write] = stored.get(write, 0) + 1
    return stored


def evaluate(run: Run) -> tuple[list[Criterion], dict[str, float]]:
    samples = run.samples
    db_backed = [s for s in samples if s.kind != LIVENESS]
    liveness = [s for s in samples if s.kind == LIVENESS]
    outage = [s for s in db_backed if run.stopped_at <= s.sent < run.start_at]
    outage_bad = [s for s in outage if s.status != 503 or not s.retry_after]
    ready_outage = [s for s in outage if s.kind == "ready"]
    server_errors = [s for s in samples if s.status == 0 or (s.status >= 500 and s.status != 503)]
    slow = [s for s in samples if s.latency > SLOWEST_S]

    def ok(s: Sample) -> bool:
        return s.status == EXPECTED.get(s.kind, 200)

    after = sorted((s for s in db_backed if s.sent >= run.start_at), key=lambda s: s.done)
    first = next((s for s in after if ok(s)), None)
    first_success_s = first.done - run.start_at if first else float("inf")
    # After the first success, any failure would be a connection that died with the old server
    # and was used again (CONN_HEALTH_CHECKS must catch those before use).
    after_first = [s for s in after if first is not None and s.sent > first.done and not ok(s)]
    late = [s for s in after if s.sent >= run.start_at + CLEAN_FROM_S]
    late_bad = [s for s in late if not ok(s)]

    writes = {s.index: s for s in samples if s.kind == "write" and s.index >= 0}
    partial = sorted(i for i, n in run.stored.items() if n != 2)
    lost = sorted(i for i, s in writes.items() if s.status == 201 and run.stored.get(i) != 2)
    unknown = sorted(set(run.stored) - set(writes))
    in_flight = [i for i, s in writes.items() if s.status != 201 and run.stored.get(i) == 2]

    criteria = [
        Criterion("liveness (/health) 200 throughout",
                  bool(liveness) and all(s.status == 200 for s in liveness),
                  f"{sorted({s.status for s in liveness})} over {len(liveness)}"),
        Criterion("DB-backed calls during the outage -> 503 + Retry-After",
                  bool(outage) and not outage_bad,
                  f"{len(outage_bad)} other of {len(outage)}: {statuses(outage_bad)}"),
        Criterion("readiness (/api/v1/health) 503 during the outage",
                  bool(ready_outage) and all(s.status == 503 for s in ready_outage),
                  f"{sorted({s.status for s in ready_outage})} over {len(ready_outage)}"),
        Criterion(f"outage answers within {ANSWER_WITHIN_S:g} s",
                  bool(outage) and max(s.latency for s in outage) <= ANSWER_WITHIN_S,
                  f"slowest {max((s.latency for s in outage), default=0) * 1000:.0f} ms"),
        Criterion("0 x 500 (no 5xx but 503, no dropped request)", not server_errors,
                  f"{len(server_errors)} of {len(samples)}: {statuses(server_errors)}"),
        Criterion(f"0 requests > {SLOWEST_S:g} s", not slow,
                  f"{len(slow)}; slowest {max(s.latency for s in samples) * 1000:.0f} ms"),
        Criterion(f"first success <= {FIRST_SUCCESS_S:g} s after start",
                  first_success_s <= FIRST_SUCCESS_S, f"{first_success_s:.2f} s"),
        Criterion(f"error rate 0 from {CLEAN_FROM_S:g} s after start", bool(late) and not late_bad,
                  f"{len(late_bad)} of {len(late)}: {statuses(late_bad)}"),
        Criterion("0 stale-connection errors after the first success", not after_first,
                  f"{len(after_first)}: {statuses(after_first)}"),
        Criterion("writes committed in full or absent; every 201 stored",
                  bool(writes) and not (partial or lost or unknown),
                  f"{sum(s.status == 201 for s in writes.values())} acknowledged, "
                  f"{len(in_flight)} committed unacknowledged, partial {partial[:5]}, "
                  f"lost {lost[:5]}, unknown {unknown[:5]}"),
        Criterion("no process restarted (same gunicorn master and worker pids)",
                  run.pids_before == run.pids_after and len(run.pids_before) == WORKERS + 1,
                  f"{sorted(run.pids_before)} -> {sorted(run.pids_after)}"),
    ]  # fmt: skip
    baseline = [s.latency for s in db_backed if s.done < run.stop_at]
    figures = {
        "requests": len(samples),
        "outage_requests": len(outage),
        "outage_p99_ms": percentile([s.latency for s in outage], 99) * 1000,
        "baseline_p99_ms": percentile(baseline, 99) * 1000,
        "first_success_s": first_success_s,
        "writes_in_flight_committed": len(in_flight),
    }
    return criteria, figures


# --- pytest -------------------------------------------------------------------------------------


def test_postgres_restart_answers_503_fast_and_recovers_without_stale_connections(
    tmp_path: Path,
) -> None:
    with restart_stack(tmp_path) as stack:
        criteria, figures = evaluate(run_scenario(stack, CI))
    print(report("T6 postgres restart", criteria, figures))
    assert_passed(criteria)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the table's real durations")
    parser.add_argument("--workdir", type=Path, help="keep the logs here (default: a temp dir)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-t6-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"logs: {workdir}", flush=True)
    with restart_stack(workdir) as stack:
        criteria, figures = evaluate(run_scenario(stack, FULL if args.full else CI))
    print(report("T6 postgres restart", criteria, figures), flush=True)
    return 0 if all(c.ok for c in criteria) else 1


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
