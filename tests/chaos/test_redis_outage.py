"""reliability.md T5: Redis killed (`kill -9`) or frozen (`kill -STOP`) under steady mixed traffic.

The production profile (gunicorn + uvicorn workers, as the Dockerfile runs it, with a Celery
worker and beat beside it) serves our own PostgreSQL database (`tradingsite_chaos_t5`) and a
redis-server this module starts on a free port: the shared Redis and the shared PostgreSQL
server process are never touched. An open-loop load generator (tests.chaos.harness.Load) sends
`rps` requests a second on a fixed schedule, mixing liveness, authenticated reads, an online
feature lookup, a bar write, two revoked tokens and the correct password of a locked-out user; a
second stream sprays wrong passwords from one address against the login limit; websocket
clients listen to `ws /ws/stream` and reconnect as the dashboards do; the database row of the
beat-scheduled heartbeat task shows whether beat -> Redis -> worker still goes round. Redis dies
(or freezes) `before_s` into the run and comes back `outage_s` later, on the same port, with no
process restarted.

Scaled for CI (about 90 s for both runs on 2 cores): 6 s before, a 12 s outage, 12 s after,
breaker reset timeout 5 s, a heartbeat every 2 s. Production keeps
CIRCUIT_BREAKER_RESET_TIMEOUT_SECONDS=30; the table's real timeline (60 s before, 120 s outage,
60 s after, 50 rps, 30 s reset) runs standalone:

    python -m tests.chaos.test_redis_outage [--full] [--mode kill|stop]

The login rate limit falls back to a per-process count while Redis is down (at most
limit x WORKERS per window); the account lockout (tradingsite.security.lockout) lives in the
database, so the locked user U stays locked whatever Redis does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
import requests

from tests.chaos.harness import (
    CLIENT_TIMEOUT_S,
    HTTPS,
    REDIS_SERVER,
    SETUP_TIMEOUT_S,
    Criterion,
    Load,
    RedisServer,
    Request,
    Running,
    Sample,
    StreamClients,
    app_env,
    assert_passed,
    login,
    obtain_token,
    percentile,
    prepare_app,
    process_tree,
    report,
    start_app,
    statuses,
    warm_up,
)
from tests.support import (
    PYTHON,
    ROOT,
    free_port,
    postgres_database,
    stop_process,
)

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tradingsite_chaos_t5"
PASSWORD = "chaos-Monkey-pass-77"
LOCKED_USER = "locked-u"  # U: locked out before every run, with the correct password in the load
WORKERS = 2
SOCKET_TIMEOUT_S = 0.25  # REDIS_SOCKET_TIMEOUT_SECONDS of the production settings
LATENCY_MARGIN_S = 0.25  # scheduling noise on 2 shared cores, on top of the socket timeout
OPEN_WITHIN_S = 5.0  # /health shows the Redis breaker open this soon after the fault
CLOSE_SLACK_S = 5.0  # closed again within reset timeout + this after Redis returns
AUTH_LIMIT, AUTH_WINDOW_S = 3, 5  # RATE_LIMIT_AUTH for the run: 3 login attempts per 5 s
LOGIN_RPS = 2.0  # each processed attempt costs a full password hash (~0.5 s of a core)
# When Redis goes, each worker's in-process limiter admits a burst of AUTH_LIMIT attempts at
# once, whose password hashes queue behind one GIL: on 2 busy cores that is seconds, not a fault.
LOGIN_TIMEOUT_S = 15.0
REDIS_BREAKER = "cache"  # the breaker in front of Redis (tradingsite.security.breakers)
HEARTBEAT_S = 2  # SCHEDULER_HEARTBEAT_SECONDS for the run
CELERY_BACK_WITHIN_S = 60.0  # a beat-scheduled task round-trips again this soon after Redis
STREAM_CLIENTS = 3
STREAM_CLOSE_CODES = {1011, 1012}  # a clean close while Redis is away; 1006 (none) is not


@dataclass(frozen=True)
class Timeline:
    before_s: float
    outage_s: float
    after_s: float
    reset_timeout_s: float
    rps: float


CI = Timeline(before_s=6, outage_s=12, after_s=12, reset_timeout_s=5, rps=25)
FULL = Timeline(before_s=60, outage_s=120, after_s=60, reset_timeout_s=30, rps=50)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason=f"{REDIS_SERVER} is missing"),
]


# --- the stack ----------------------------------------------------------------------------------


@dataclass
class Stack:
    url: str
    redis: RedisServer
    processes: dict[str, subprocess.Popen]  # gunicorn, celery worker, celery beat
    token: str  # a live token for the authenticated reads, the write and the websockets

    def pids(self) -> dict[str, set[int]]:
        return {name: process_tree(proc) for name, proc in self.processes.items()}

    @property
    def stream_url(self) -> str:
        ws = self.url.replace("http://", "ws://")
        return f"{ws}/ws/stream?token={self.token}&topics=features&snapshot=1"


def celery(role: str, env: dict[str, str], tmp: Path) -> subprocess.Popen:
    args = ["worker", "--pool=solo", "--without-mingle", "--without-gossip"]
    if role == "beat":
        args = ["beat", "--schedule", str(tmp / "beat-schedule")]
    return subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "tradingsite", *args, "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=(tmp / f"celery-{role}.log").open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


@contextlib.contextmanager
def chaos_stack(tmp: Path, timeline: Timeline) -> Iterator[Stack]:
    postgres_database(DATABASE_URL, fresh=True)
    redis = RedisServer(free_port(), tmp / "redis.log")
    redis.start()
    env = app_env(
        tmp,
        database_url=DATABASE_URL,
        redis_url=redis.url,
        workers=WORKERS,
        password=PASSWORD,
        CIRCUIT_BREAKER_RESET_TIMEOUT_SECONDS=str(timeline.reset_timeout_s),
        REDIS_SOCKET_TIMEOUT_SECONDS=str(SOCKET_TIMEOUT_S),
        RATE_LIMIT_AUTH=f"{AUTH_LIMIT}/{AUTH_WINDOW_S}",
        LOGIN_LOCKOUT_FAILURES="2",  # locking U costs a password hash per failure
        LOGIN_LOCKOUT_SECONDS="3600",  # U stays locked through a --full run
        SCHEDULER_HEARTBEAT_SECONDS=str(HEARTBEAT_S),
    )
    processes: dict[str, subprocess.Popen] = {}
    try:
        prepare_app(
            env,
            ("ops", "--role", "analyst", "--role", "data-engineer"),  # data-engineer: may ingest
            (LOCKED_USER, "--role", "analyst"),
        )
        processes["worker"] = celery("worker", env, tmp)
        processes["beat"] = celery("beat", env, tmp)
        processes["gunicorn"], url = start_app(env, workers=WORKERS, log=tmp / "server.log")
        stack = Stack(
            url, redis, processes, obtain_token(url, "ops", PASSWORD, client_ip="10.0.0.1")
        )
        # U's successful login would cost a password hash per round.
        warm_up(traffic(url, stack.token, stack.token, stack.token, rps=1), skip=("locked_login",))
        yield stack
    finally:
        for proc in processes.values():
            stop_process(proc)
        redis.stop()


def lock_out(url: str, username: str) -> None:
    """Wrong passwords from fresh addresses (past the IP limit) until the account is locked."""
    for attempt in range(20):
        ip = f"10.55.0.{attempt + 1}"
        response = login(url, username, "not-the-password", client_ip=ip, timeout=SETUP_TIMEOUT_S)
        if response.status_code == 429 and response.json().get("code") == "account_locked":
            return
    raise AssertionError(f"{username} not locked out: {response.status_code} {response.text}")


def revoke_token(url: str, token: str, *, client_ip: str) -> int:
    response = requests.post(
        f"{url}/api/v1/auth/token/revoke/",
        headers={**HTTPS, "Authorization": f"Bearer {token}", "X-Forwarded-For": client_ip},
        timeout=CLIENT_TIMEOUT_S,
    )
    return response.status_code


# --- the load ---------------------------------------------------------------------------------


def inspect(kind: str, response: requests.Response) -> str:
    """The Redis breaker's state from /health; the error code of a refused login."""
    if kind == "health" and response.status_code == 200:
        return response.json()["circuit_breakers"][REDIS_BREAKER]["state"]
    if kind in ("login", "locked_login") and response.status_code == 429:
        return response.json().get("code", "")
    return ""


def traffic(url: str, token: str, token_a: str, token_b: str, rps: float) -> Load:
    def get(path: str, bearer: str | None) -> Request:
        headers = {**HTTPS, "X-Forwarded-For": "10.0.0.2"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return lambda s, _i: s.get(f"{url}{path}", headers=headers, timeout=CLIENT_TIMEOUT_S)

    def write(session: requests.Session, i: int) -> requests.Response:
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_577_836_800 + i * 60))
        bar = {"ts": ts, "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 10}
        return session.post(
            f"{url}/api/v1/market/bars",
            json={"symbol": "CHAOS", "timeframe": "1m", "bars": [bar]},
            headers={**HTTPS, "X-Forwarded-For": "10.0.0.2", "Authorization": f"Bearer {token}"},
            timeout=CLIENT_TIMEOUT_S,
        )

    def locked_login(session: requests.Session, i: int) -> requests.Response:
        # U's correct password, each from another address: only the lockout may refuse it.
        return session.post(
            f"{url}/api/v1/auth/token/",
            json={"username": LOCKED_USER, "password": PASSWORD},
            headers={**HTTPS, "X-Forwarded-For": f"10.77.{i // 256 % 256}.{i % 256}"},
            timeout=CLIENT_TIMEOUT_S,
        )

    kinds = {
        "health": get("/health", None),
        "list": get("/api/v1/market/symbols", token),
        "bars": get("/api/v1/market/bars?symbol=CHAOS&timeframe=1m&limit=50", token),
        "online": get("/api/v1/feature-views/core_technical/online?symbols=CHAOS", token),
        "token_a": get("/api/v1/market/symbols", token_a),
        "token_b": get("/api/v1/market/symbols", token_b),
        "write": write,
        "locked_login": locked_login,
    }
    return Load(url, rps, kinds, inspect=inspect)


def login_attempts(url: str) -> Load:
    def attempt(session: requests.Session, i: int) -> requests.Response:
        # A password spray from one address: a new username each time, so no account lockout
        # answers for the IP limit.
        return session.post(
            f"{url}/api/v1/auth/token/",
            json={"username": f"nobody-{i}-{time.time_ns()}", "password": "not-the-password"},
            headers={**HTTPS, "X-Forwarded-For": "10.66.0.1"},
            timeout=LOGIN_TIMEOUT_S,
        )

    return Load(url, LOGIN_RPS, {"login": attempt}, inspect=inspect)


class HeartbeatWatch:
    """Polls the scheduler heartbeat row (tradingsite.tasks.scheduler_heartbeat_task, sent by
    beat through Redis and run by the worker): (time.monotonic() seen, last_beat_at) pairs."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, datetime]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> HeartbeatWatch:
        self._thread.start()
        return self

    def _poll(self) -> None:
        with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
            while not self._stop.wait(0.25):
                row = conn.execute(
                    "SELECT last_beat_at FROM tradingsite_schedulerheartbeat WHERE name = 'beat'"
                ).fetchone()
                if row and (not self.seen or row[0] != self.seen[-1][1]):
                    self.seen.append((time.monotonic(), row[0]))

    def round_trip_after(self, wall: float) -> float | None:
        """When the second heartbeat that ran after `wall` (time.time()) was seen: the first may
        have waited in a frozen Redis since before the fault; the second was sent by beat
        after it, so beat, the broker and the worker all work again."""
        after = [t for t, beat in self.seen if beat.timestamp() > wall]
        return after[1] if len(after) > 1 else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --- one run and its verdict --------------------------------------------------------------------


@dataclass
class Run:
    mode: str
    timeline: Timeline
    kill_at: float = 0.0
    revoke_b_at: float = 0.0
    revoke_b_status: int = 0
    back_at: float = 0.0
    back_wall: float = 0.0
    stopped_at: float = 0.0
    pids_before: dict[str, set[int]] = field(default_factory=dict)
    pids_after: dict[str, set[int]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    logins: list[Sample] = field(default_factory=list)
    streams: StreamClients | None = None
    heartbeat: HeartbeatWatch = field(default_factory=HeartbeatWatch)
    celery_back_s: float = float("inf")


def run_scenario(stack: Stack, mode: str, timeline: Timeline, run_id: int) -> Run:
    """Traffic, then the fault at BEFORE, Redis back after OUTAGE, traffic for AFTER more."""
    setup_ip = f"10.0.{run_id}.1"
    token_a = obtain_token(stack.url, "ops", PASSWORD, client_ip=setup_ip)
    token_b = obtain_token(stack.url, "ops", PASSWORD, client_ip=setup_ip)
    assert revoke_token(stack.url, token_a, client_ip=setup_ip) == 200
    lock_out(stack.url, LOCKED_USER)
    run = Run(mode, timeline, pids_before=stack.pids())
    load = traffic(stack.url, stack.token, token_a, token_b, timeline.rps)
    logins = login_attempts(stack.url)
    run.streams = StreamClients(stack.stream_url, STREAM_CLIENTS).start()
    run.heartbeat.start()
    running = Running(load, logins).start()
    time.sleep(timeline.before_s)
    run.kill_at = time.monotonic()
    stack.redis.kill9() if mode == "kill" else stack.redis.freeze()
    time.sleep(min(2.0, timeline.outage_s / 4))
    run.revoke_b_status = revoke_token(stack.url, token_b, client_ip=setup_ip)
    run.revoke_b_at = time.monotonic()
    time.sleep(max(0.0, run.kill_at + timeline.outage_s - time.monotonic()))
    stack.redis.start() if mode == "kill" else stack.redis.thaw()
    run.back_at, run.back_wall = time.monotonic(), time.time()
    time.sleep(timeline.after_s)
    run.stopped_at = time.monotonic()
    running.stop()
    run.streams.stop()
    # Celery's reconnect may take longer than the HTTP recovery: wait for it up to its limit.
    while run.heartbeat.round_trip_after(run.back_wall) is None and (
        time.monotonic() < run.back_at + CELERY_BACK_WITHIN_S
    ):
        time.sleep(0.5)
    run.heartbeat.stop()
    back = run.heartbeat.round_trip_after(run.back_wall)
    run.celery_back_s = float("inf") if back is None else back - run.back_at
    run.samples, run.logins = list(load.samples), list(logins.samples)
    run.pids_after = stack.pids()
    return run


def evaluate(run: Run) -> tuple[list[Criterion], dict[str, float]]:
    http, figures = http_criteria(run)
    return http + stream_criteria(run) + celery_criteria(run), figures


def http_criteria(run: Run) -> tuple[list[Criterion], dict[str, float]]:
    t, tl = run, run.timeline
    samples = run.samples
    health = sorted((s for s in samples if s.kind == "health" and s.status), key=lambda s: s.done)
    errors = [s for s in samples + run.logins if s.status == 0 or s.status >= 500]
    opened = [s for s in health if s.sent >= t.kill_at and s.note == "open"]
    open_after = (opened[0].done - t.kill_at) if opened else float("inf")
    # Until the breaker is open in every worker: the last /health during the outage that still
    # answered "closed" (each worker has its own breaker; /health reaches either).
    closed_during = [
        s.done for s in health if t.kill_at <= s.sent < t.back_at and s.note == "closed"
    ]
    all_open_at = max([t.kill_at + open_after, *closed_during]) if opened else t.back_at
    # Closed for good: the first /health after Redis returned from which every later one is closed.
    after = [s for s in health if s.sent >= t.back_at]
    closed_at = None
    for index, sample in enumerate(after):
        if all(s.note == "closed" for s in after[index:]):
            closed_at = sample.done
            break
    close_after = (closed_at - t.back_at) if closed_at is not None else float("inf")

    baseline = [s.latency for s in samples if s.done < t.kill_at and s.kind != "health"]
    pre_open = [s.latency for s in samples if t.kill_at <= s.sent <= all_open_at]
    open_phase = [s.latency for s in samples if all_open_at < s.sent < t.back_at]
    base_p99 = percentile(baseline, 99)
    pre_open_p99 = percentile(pre_open, 99)

    token_a = [s for s in samples if s.kind == "token_a"]
    token_b_after = [s for s in samples if s.kind == "token_b" and s.sent >= t.revoke_b_at]
    token_b_before = [s for s in samples if s.kind == "token_b" and s.done < t.kill_at]
    locked = [s for s in samples if s.kind == "locked_login"]

    outage_logins = [s for s in run.logins if t.kill_at <= s.sent < t.back_at]
    window_counts: dict[int, int] = {}
    kill_wall = t.back_wall - (t.back_at - t.kill_at)
    for s in outage_logins:
        window = int(s.wall // AUTH_WINDOW_S)
        if window * AUTH_WINDOW_S >= kill_wall and (window + 1) * AUTH_WINDOW_S <= t.back_wall:
            processed = s.status != 0 and s.note != "rate_limited"  # reached the password check
            window_counts[window] = window_counts.get(window, 0) + processed
    limited = sum(s.note == "rate_limited" for s in outage_logins)
    # The last seconds of traffic, once the breaker must have closed: every request succeeds.
    late_from = max(t.back_at + tl.reset_timeout_s + CLOSE_SLACK_S, t.stopped_at - 3)
    late = [s for s in samples if s.sent >= late_from]
    expected = {"token_a": 401, "token_b": 401, "write": 201, "locked_login": 429}
    late_bad = [s for s in late if s.status != expected.get(s.kind, 200)]
    pids_same = all(run.pids_before[n] == run.pids_after[n] for n in run.pids_before)

    criteria = [
        Criterion("no 5xx or dropped request", not errors,
                  f"{len(errors)} of {len(samples) + len(run.logins)}: {statuses(errors)}, "
                  f"{[(s.note, round(s.sent - t.kill_at, 1)) for s in errors][:4]} s in"),
        Criterion(f"/health shows the Redis breaker open within {OPEN_WITHIN_S:g} s",
                  open_after <= OPEN_WITHIN_S, f"open after {open_after:.2f} s"),
        Criterion("token A (revoked before) -> 401 throughout",
                  bool(token_a) and all(s.status == 401 for s in token_a),
                  f"{sorted({s.status for s in token_a})} over {len(token_a)} requests"),
        Criterion("token B works before, revoked during the outage (no 5xx)",
                  run.revoke_b_status == 200 and all(s.status == 200 for s in token_b_before),
                  f"revoke -> {run.revoke_b_status}, before: "
                  f"{sorted({s.status for s in token_b_before})}"),
        Criterion("token B -> 401 from its revocation on",
                  bool(token_b_after) and all(s.status == 401 for s in token_b_after),
                  f"{sorted({s.status for s in token_b_after})} over {len(token_b_after)}"),
        Criterion("U stays locked (correct password -> 429 account_locked throughout)",
                  bool(locked) and all(s.note == "account_locked" for s in locked),
                  f"{sorted({(s.status, s.note) for s in locked})} over {len(locked)}"),
        Criterion(f"login limit enforced during the outage (<= {AUTH_LIMIT} x {WORKERS} workers "
                  f"per {AUTH_WINDOW_S} s window)",
                  limited > 0 and bool(window_counts)
                  and all(n <= AUTH_LIMIT * WORKERS for n in window_counts.values()),
                  f"{limited} x 429 of {len(outage_logins)}; processed per full window "
                  f"{sorted(window_counts.values())}"),
        Criterion(f"p99 until the breaker opened <= baseline p99 + socket timeout + "
                  f"{LATENCY_MARGIN_S:g} s",
                  pre_open_p99 <= base_p99 + SOCKET_TIMEOUT_S + LATENCY_MARGIN_S,
                  f"{pre_open_p99 * 1000:.0f} ms over {len(pre_open)} requests "
                  f"(baseline p99 {base_p99 * 1000:.0f} ms)"),
        Criterion(f"breaker closed <= reset ({tl.reset_timeout_s:g} s) + {CLOSE_SLACK_S:g} s "
                  "after Redis returned",
                  close_after <= tl.reset_timeout_s + CLOSE_SLACK_S,
                  f"closed after {close_after:.2f} s"),
        Criterion("requests succeed after recovery", bool(late) and not late_bad,
                  f"{len(late_bad)} unexpected of {len(late)}: {statuses(late_bad)}"),
        Criterion("no process restarted (gunicorn master + workers, celery worker, beat)",
                  pids_same and len(run.pids_before["gunicorn"]) == WORKERS + 1,
                  f"{sorted(run.pids_before.items())} -> {sorted(run.pids_after.items())}"),
    ]  # fmt: skip
    figures = {
        "requests": len(samples) + len(run.logins),
        "errors_5xx": len(errors),
        "breaker_open_s": open_after,
        "breaker_closed_s": close_after,
        "baseline_p99_ms": base_p99 * 1000,
        "pre_open_p99_ms": pre_open_p99 * 1000,
        "open_phase_p99_ms": percentile(open_phase, 99) * 1000,
        "celery_back_s": run.celery_back_s,
    }
    return criteria, figures


def stream_criteria(run: Run) -> list[Criterion]:
    assert run.streams is not None
    clients = run.streams.connections
    ended = [c for conns in clients for c in conns if c.closed is not None]
    unclean = [c.close_code for c in ended if c.close_code not in STREAM_CLOSE_CODES]
    current = [conns[-1] if conns else None for conns in clients]
    reopened = [c for conns in clients for c in conns if c.opened >= run.back_at]
    # A socket closed 1011 before its first message is an attempt refused, retried a second later
    # (e.g. a channel-layer connection that died with the old Redis, dropped on first use).
    refused = [c for c in reopened if not c.first and c.close_code in STREAM_CLOSE_CODES]
    no_snapshot = [c for c in reopened if c not in refused and c.first.get("type") != "snapshot"]
    # Live again: every client got an event in the last seconds, as the HTTP check's window.
    late_from = max(run.back_at + run.timeline.reset_timeout_s + CLOSE_SLACK_S, run.stopped_at - 3)
    live = [c is not None and any(t >= late_from for t in c.events) for c in current]
    return [
        Criterion("websockets: closed 1011/1012 or stayed connected", not unclean,
                  f"{len(ended)} closed, codes {sorted({c.close_code for c in ended})}, "
                  f"refused attempts {sum(map(len, run.streams.refused))}"),
        Criterion("websockets: every reconnect after Redis returned starts with a full snapshot",
                  not no_snapshot and all(c is not None and c.closed is None for c in current)
                  and all(c.first.get("type") == "snapshot" for c in current if c is not None),
                  f"{len(reopened) - len(refused)} reconnected ({len(refused)} refused 1011), "
                  f"{len(no_snapshot)} without a snapshot first; "
                  f"open at the end {sum(c is not None and c.closed is None for c in current)}"
                  f"/{len(current)}"),
        Criterion("websockets: live events reach every client after recovery", all(live),
                  f"{sum(live)}/{len(live)} clients"),
    ]  # fmt: skip


def celery_criteria(run: Run) -> list[Criterion]:
    before = [t for t, _ in run.heartbeat.seen if t < run.kill_at]
    return [
        Criterion("celery: a beat-scheduled task ran before the fault", bool(before),
                  f"{len(before)} heartbeats"),
        Criterion(f"celery worker + beat round-trip again <= {CELERY_BACK_WITHIN_S:g} s after "
                  "Redis returned", run.celery_back_s <= CELERY_BACK_WITHIN_S,
                  f"second heartbeat {run.celery_back_s:.2f} s after"),
    ]  # fmt: skip


# --- pytest -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with chaos_stack(tmp_path_factory.mktemp("chaos"), CI) as running:
        yield running


@pytest.mark.parametrize("mode", ["kill", "stop"])
def test_redis_outage_keeps_security_state_and_serves_without_5xx(stack: Stack, mode: str) -> None:
    run = run_scenario(stack, mode, CI, run_id=1 if mode == "kill" else 2)
    criteria, figures = evaluate(run)
    print(report(f"T5 redis {mode}", criteria, figures))
    assert_passed(criteria)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the table's real durations")
    parser.add_argument("--mode", choices=["kill", "stop", "both"], default="both")
    parser.add_argument("--workdir", type=Path, help="keep the logs here (default: a temp dir)")
    args = parser.parse_args()
    timeline = FULL if args.full else CI
    modes = ["kill", "stop"] if args.mode == "both" else [args.mode]
    failed = 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-t5-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"logs: {workdir}", flush=True)
    with chaos_stack(workdir, timeline) as running:
        for run_id, mode in enumerate(modes, start=1):
            criteria, figures = evaluate(run_scenario(running, mode, timeline, run_id))
            print(report(f"T5 redis {mode}", criteria, figures), flush=True)
            failed += sum(not c.ok for c in criteria)
    return 1 if failed else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
