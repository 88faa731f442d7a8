"""reliability.md T5: Redis killed (`kill -9`) or frozen (`kill -STOP`) under steady mixed traffic.

The production profile (gunicorn + uvicorn workers, as the Dockerfile runs it) serves our own
PostgreSQL database (`tradingsite_chaos_t5`) and a redis-server this module starts on a free port:
the shared Redis and the shared PostgreSQL server process are never touched. An open-loop load
generator sends RATE_RPS requests a second on a fixed schedule (a stall shows in the latencies
instead of lowering the rate: no coordinated omission), mixing liveness, authenticated reads,
an online feature lookup, a bar write and two revoked tokens; a second stream tries wrong
passwords against the login limit. Redis dies (or freezes) BEFORE_S into the run and comes back
OUTAGE_S later, on the same port, with no application process restarted.

Scaled for CI (about 75 s for both runs on 2 cores): 6 s before, a 12 s outage, 12 s after,
breaker reset timeout 5 s. Production keeps CIRCUIT_BREAKER_RESET_TIMEOUT_SECONDS=30; the table's
real timeline (60 s before, 120 s outage, 60 s after, 50 rps, 30 s reset) runs standalone:

    python -m tests.chaos.test_redis_outage [--full] [--mode kill|stop]

No lockout feature exists (tradingsite.security has none), so "U stays locked" is checked as its
documented substitute: the login rate limit still refuses during the outage, through the
in-process fallback of tradingsite.security.ratelimit (per worker: at most limit x WORKERS).
Websocket clients (the table's last clause) are not exercised here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support import (
    PYTHON,
    ROOT,
    free_port,
    manage,
    postgres_database,
    production_env,
    stop_process,
    wait_for_port,
)

REDIS_SERVER = "/usr/bin/redis-server"
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tradingsite_chaos_t5"
PASSWORD = "chaos-Monkey-pass-77"
WORKERS = 2
SOCKET_TIMEOUT_S = 0.25  # REDIS_SOCKET_TIMEOUT_SECONDS of the production settings
LATENCY_MARGIN_S = 0.25  # scheduling noise on 2 shared cores, on top of the socket timeout
OPEN_WITHIN_S = 5.0  # /health shows the Redis breaker open this soon after the fault
CLOSE_SLACK_S = 5.0  # closed again within reset timeout + this after Redis returns
AUTH_LIMIT, AUTH_WINDOW_S = 3, 5  # RATE_LIMIT_AUTH for the run: 3 login attempts per 5 s
LOGIN_RPS = 2.0  # each processed attempt costs a full password hash (~0.5 s of a core)
CLIENT_TIMEOUT_S = 5.0
REDIS_BREAKER = "cache"  # the breaker in front of Redis (tradingsite.security.breakers)
HTTPS = {"X-Forwarded-Proto": "https"}


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


# --- our own redis-server ---------------------------------------------------------------------


class RedisServer:
    """A redis-server on `port` that we may kill, freeze, thaw and restart on the same port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.proc: subprocess.Popen | None = None
        self.frozen = False

    def start(self) -> None:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, timeout=10)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.frozen:
            self.thaw()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)


# --- the application --------------------------------------------------------------------------


@dataclass
class Stack:
    url: str
    redis: RedisServer
    server: subprocess.Popen
    log: Path
    token: str  # a live token for the authenticated reads and the write

    def pids(self) -> set[int]:
        """The gunicorn master and its worker processes."""
        pids = {self.server.pid}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.server.pid:  # the parent pid
                    pids.add(int(stat.parent.name))
        return pids


def obtain_token(url: str, *, client_ip: str) -> str:
    response = requests.post(
        f"{url}/api/v1/auth/token/",
        json={"username": "ops", "password": PASSWORD},
        headers={**HTTPS, "X-Forwarded-For": client_ip},
        timeout=CLIENT_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    return response.json()["access"]


def revoke_token(url: str, token: str, *, client_ip: str) -> int:
    response = requests.post(
        f"{url}/api/v1/auth/token/revoke/",
        headers={**HTTPS, "Authorization": f"Bearer {token}", "X-Forwarded-For": client_ip},
        timeout=CLIENT_TIMEOUT_S,
    )
    return response.status_code


@contextlib.contextmanager
def chaos_stack(tmp: Path, timeline: Timeline) -> Iterator[Stack]:
    postgres_database(DATABASE_URL, fresh=True)
    redis = RedisServer(free_port(), tmp / "redis.log")
    redis.start()
    multiproc = tmp / "prometheus"
    multiproc.mkdir(exist_ok=True)
    env = production_env(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
        TRADINGSITE_VAR_DIR=str(tmp),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        WORKERS=str(WORKERS),
        OPS_PASSWORD=PASSWORD,
        CIRCUIT_BREAKER_RESET_TIMEOUT_SECONDS=str(timeline.reset_timeout_s),
        REDIS_SOCKET_TIMEOUT_SECONDS=str(SOCKET_TIMEOUT_S),
        RATE_LIMIT_AUTH=f"{AUTH_LIMIT}/{AUTH_WINDOW_S}",
        RATE_LIMIT_API="1000000/60",  # the load shares one client address: measure, not throttle
    )
    server = None
    try:
        for args in (
            ("migrate", "--noinput"),
            ("create_api_user", "ops", "--password-env", "OPS_PASSWORD",
             "--role", "analyst", "--role", "data-engineer"),  # data-engineer: may ingest bars
            ("shell", "-c", "from features.store import feature_view_ensure_default as f; f()"),
        ):  # fmt: skip
            result = manage(*args, env=env, timeout=120)
            assert result.returncode == 0, result.stderr
        port = free_port()
        log = tmp / "server.log"
        server = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "tradingsite.asgi:application", "-k",
             "tradingsite.uvicorn_worker.UvicornWorker", "--preload", "-w", str(WORKERS),
             "-b", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(port, server)
        url = f"http://127.0.0.1:{port}"
        stack = Stack(url, redis, server, log, obtain_token(url, client_ip="10.0.0.1"))
        warm_up(stack)
        yield stack
    finally:
        if server is not None:
            stop_process(server)
        redis.stop()


def warm_up(stack: Stack) -> None:
    """A few requests of every kind in each worker, so the baseline is not the first imports."""
    load = traffic(stack.url, stack.token, stack.token, stack.token, rps=1)
    with requests.Session() as session:
        for i in range(6):
            for kind in load.kinds.values():
                kind(session, -1 - i)


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Sample:
    kind: str
    sent: float  # time.monotonic() when the request was due
    wall: float  # time.time() at the same instant (rate-limit windows are wall-clock aligned)
    latency: float
    status: int  # 0: no HTTP answer (connection error or client timeout)
    breaker: str = ""  # /health only: the Redis breaker's state

    @property
    def done(self) -> float:
        return self.sent + self.latency


@dataclass
class Load:
    """Requests on a fixed schedule (open loop), each kind in turn, from a thread pool."""

    url: str
    rps: float
    kinds: dict[str, Callable[[requests.Session, int], requests.Response]]
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _local: threading.local = field(default_factory=threading.local)

    def run(self) -> None:
        names = list(self.kinds)
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=32) as pool:
            i = 0
            while not self._stop.is_set():
                due = start + i / self.rps
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self._one, names[i % len(names)], i, due)
                i += 1

    def _one(self, kind: str, i: int, due: float) -> None:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()  # keep-alive per thread
        wall = time.time() - (time.monotonic() - due)
        breaker, status = "", 0
        try:
            response = self.kinds[kind](session, i)
            status = response.status_code
            if kind == "health" and status == 200:
                breaker = response.json()["circuit_breakers"][REDIS_BREAKER]["state"]
        except requests.RequestException:
            session.close()
            self._local.session = None
        latency = time.monotonic() - due
        self.samples.append(Sample(kind, due, wall, latency, status, breaker))

    def stop(self) -> None:
        self._stop.set()


def traffic(url: str, token: str, token_a: str, token_b: str, rps: float) -> Load:
    def get(path: str, bearer: str | None) -> Callable[[requests.Session, int], requests.Response]:
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

    kinds = {
        "health": get("/health", None),
        "list": get("/api/v1/market/symbols", token),
        "bars": get("/api/v1/market/bars?symbol=CHAOS&timeframe=1m&limit=50", token),
        "online": get("/api/v1/feature-views/core_technical/online?symbols=CHAOS", token),
        "token_a": get("/api/v1/market/symbols", token_a),
        "token_b": get("/api/v1/market/symbols", token_b),
        "write": write,
    }
    return Load(url, rps, kinds)


def login_attempts(url: str) -> Load:
    def attempt(session: requests.Session, _i: int) -> requests.Response:
        return session.post(
            f"{url}/api/v1/auth/token/",
            json={"username": "ops", "password": "not-the-password"},
            headers={**HTTPS, "X-Forwarded-For": "10.66.0.1"},
            timeout=CLIENT_TIMEOUT_S,
        )

    return Load(url, LOGIN_RPS, {"login": attempt})


# --- one run and its verdict --------------------------------------------------------------------


@dataclass
class Criterion:
    name: str
    ok: bool
    detail: str


@dataclass
class Run:
    mode: str
    timeline: Timeline
    kill_at: float = 0.0
    revoke_b_at: float = 0.0
    revoke_b_status: int = 0
    back_at: float = 0.0
    stopped_at: float = 0.0
    pids_before: set[int] = field(default_factory=set)
    pids_after: set[int] = field(default_factory=set)
    samples: list[Sample] = field(default_factory=list)
    logins: list[Sample] = field(default_factory=list)


def run_scenario(stack: Stack, mode: str, timeline: Timeline, run_id: int) -> Run:
    """Traffic, then the fault at BEFORE, Redis back after OUTAGE, traffic for AFTER more."""
    setup_ip = f"10.0.{run_id}.1"
    token_a = obtain_token(stack.url, client_ip=setup_ip)
    token_b = obtain_token(stack.url, client_ip=setup_ip)
    assert revoke_token(stack.url, token_a, client_ip=setup_ip) == 200
    run = Run(mode, timeline, pids_before=stack.pids())
    load = traffic(stack.url, stack.token, token_a, token_b, timeline.rps)
    logins = login_attempts(stack.url)
    threads = [threading.Thread(target=x.run, daemon=True) for x in (load, logins)]
    for thread in threads:
        thread.start()
    time.sleep(timeline.before_s)
    run.kill_at = time.monotonic()
    stack.redis.kill9() if mode == "kill" else stack.redis.freeze()
    time.sleep(min(2.0, timeline.outage_s / 4))
    run.revoke_b_status = revoke_token(stack.url, token_b, client_ip=setup_ip)
    run.revoke_b_at = time.monotonic()
    time.sleep(max(0.0, run.kill_at + timeline.outage_s - time.monotonic()))
    stack.redis.start() if mode == "kill" else stack.redis.thaw()
    run.back_at = time.monotonic()
    time.sleep(timeline.after_s)
    run.stopped_at = time.monotonic()
    for source in (load, logins):
        source.stop()
    for thread in threads:
        thread.join(timeout=CLIENT_TIMEOUT_S + 5)
    run.samples, run.logins = list(load.samples), list(logins.samples)
    run.pids_after = stack.pids()
    return run


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def evaluate(run: Run) -> tuple[list[Criterion], dict[str, float]]:
    t, tl = run, run.timeline
    samples = run.samples
    health = sorted((s for s in samples if s.kind == "health" and s.status), key=lambda s: s.done)
    errors = [s for s in samples + run.logins if s.status == 0 or s.status >= 500]
    opened = [s for s in health if s.sent >= t.kill_at and s.breaker == "open"]
    open_after = (opened[0].done - t.kill_at) if opened else float("inf")
    # Until the breaker is open in every worker: the last /health during the outage that still
    # answered "closed" (each worker has its own breaker; /health reaches either).
    closed_during = [
        s.done for s in health if t.kill_at <= s.sent < t.back_at and s.breaker == "closed"
    ]
    all_open_at = max([t.kill_at + open_after, *closed_during]) if opened else t.back_at
    # Closed for good: the first /health after Redis returned from which every later one is closed.
    after = [s for s in health if s.sent >= t.back_at]
    closed_at = None
    for index, sample in enumerate(after):
        if all(s.breaker == "closed" for s in after[index:]):
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

    outage_logins = [s for s in run.logins if t.kill_at <= s.sent < t.back_at]
    window_counts: dict[int, int] = {}
    kill_wall = time.time() - (time.monotonic() - t.kill_at)
    back_wall = kill_wall + (t.back_at - t.kill_at)
    for s in outage_logins:
        window = int(s.wall // AUTH_WINDOW_S)
        if window * AUTH_WINDOW_S >= kill_wall and (window + 1) * AUTH_WINDOW_S <= back_wall:
            window_counts[window] = window_counts.get(window, 0) + (s.status not in (0, 429))
    limited = sum(s.status == 429 for s in outage_logins)
    # The last seconds of traffic, once the breaker must have closed: every request succeeds.
    late_from = max(t.back_at + tl.reset_timeout_s + CLOSE_SLACK_S, t.stopped_at - 3)
    late = [s for s in samples if s.sent >= late_from]
    expected = {"token_a": 401, "token_b": 401, "write": 201}
    late_bad = [s for s in late if s.status != expected.get(s.kind, 200)]

    criteria = [
        Criterion("no 5xx or dropped request", not errors,
                  f"{len(errors)} of {len(samples) + len(run.logins)} "
                  f"{sorted({(s.kind, s.status) for s in errors})[:6]}"),
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
                  f"{len(late_bad)} unexpected of {len(late)}: "
                  f"{sorted({(s.kind, s.status) for s in late_bad})[:6]}"),
        Criterion("no process restarted (same gunicorn master and worker pids)",
                  run.pids_before == run.pids_after and len(run.pids_before) == WORKERS + 1,
                  f"{sorted(run.pids_before)} -> {sorted(run.pids_after)}"),
    ]  # fmt: skip
    figures = {
        "requests": len(samples) + len(run.logins),
        "errors_5xx": len(errors),
        "breaker_open_s": open_after,
        "breaker_closed_s": close_after,
        "baseline_p99_ms": base_p99 * 1000,
        "pre_open_p99_ms": pre_open_p99 * 1000,
        "open_phase_p99_ms": percentile(open_phase, 99) * 1000,
    }
    return criteria, figures


def report(mode: str, criteria: list[Criterion], figures: dict[str, float]) -> str:
    lines = [f"T5 redis {mode}: " + ", ".join(f"{k}={v:.2f}" for k, v in figures.items())]
    lines += [f"  {'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in criteria]
    passed = sum(c.ok for c in criteria)
    lines.append(f"{passed} passed, {len(criteria) - passed} failed")
    return "\n".join(lines)


# --- pytest -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with chaos_stack(tmp_path_factory.mktemp("chaos"), CI) as running:
        yield running


@pytest.mark.parametrize("mode", ["kill", "stop"])
def test_redis_outage_keeps_security_state_and_serves_without_5xx(stack: Stack, mode: str) -> None:
    run = run_scenario(stack, mode, CI, run_id=1 if mode == "kill" else 2)
    criteria, figures = evaluate(run)
    print(report(mode, criteria, figures))
    failed = [f"{c.name}: {c.detail}" for c in criteria if not c.ok]
    assert not failed, "\n".join(failed)


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
            print(report(mode, criteria, figures), flush=True)
            failed += sum(not c.ok for c in criteria)
    return 1 if failed else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
