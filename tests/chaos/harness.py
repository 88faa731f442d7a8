"""What the chaos scenarios (reliability.md §4, tests/chaos/test_*.py) share: our own Redis and
PostgreSQL servers to kill, the production-profile application (gunicorn + uvicorn workers, as
the Dockerfile runs it), an open-loop load generator and the `N passed, N failed` verdict.

The shared PostgreSQL and Redis servers are never stopped, frozen or reconfigured: a scenario
that takes a server away starts its own on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
import websockets

from tests.support import (
    PYTHON,
    ROOT,
    free_port,
    manage,
    production_env,
    wait_for_port,
)

REDIS_SERVER = "/usr/bin/redis-server"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"  # initdb and postgres refuse to run as root
HTTPS = {"X-Forwarded-Proto": "https"}  # the production profile redirects plain http
CLIENT_TIMEOUT_S = 5.0
SETUP_TIMEOUT_S = 30.0


# --- servers we may take away -------------------------------------------------------------------


class RedisServer:
    """A redis-server on `port` that we may kill, freeze, thaw and restart on the same port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.proc: subprocess.Popen | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

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


class PostgresCluster:
    """A throw-away PostgreSQL cluster of our own (initdb in a temp dir, 127.0.0.1 only, trust
    auth, fsync off), run as the `postgres` OS user, that we may stop and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        shutil.chown(self.root, user=PG_USER)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            ["runuser", "-u", PG_USER, "--", *args],
            capture_output=True, text=True, timeout=timeout, cwd=self.root,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def init(self) -> None:
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "-A", "trust", "--no-sync", "-E", "UTF8")  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",  # not /var/run: the shared cluster's
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "32MB",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-w", "-t", "30", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


# --- the application ----------------------------------------------------------------------------


def app_env(tmp: Path, *, database_url: str, redis_url: str, workers: int, password: str,
            **overrides: str) -> dict[str, str]:  # fmt: skip
    """The production profile for a run: its var dir and metrics dir in `tmp`, no API throttle
    (the load shares one client address: measure, not throttle), `password` for prepare_app."""
    multiproc = tmp / "prometheus"
    multiproc.mkdir(exist_ok=True)
    return production_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TRADINGSITE_VAR_DIR=str(tmp),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        WORKERS=str(workers),
        OPS_PASSWORD=password,
        RATE_LIMIT_API="1000000/60",
        **overrides,
    )


def prepare_app(env: dict[str, str], *users: tuple[str, ...]) -> None:
    """Migrate, create each API user (`(username, *create_api_user options)`, password from
    $OPS_PASSWORD) and register the default feature view: one process, one Django start-up."""
    lines = ["from django.core.management import call_command", "call_command('migrate')"]
    lines += [f"call_command('create_api_user', {', '.join(map(repr, user))}, "
              "'--password-env', 'OPS_PASSWORD')" for user in users]  # fmt: skip
    lines.append("from features.store import feature_view_ensure_default as f; f()")
    result = manage("shell", "-c", "\n".join(lines), env=env, timeout=180)
    assert result.returncode == 0, result.stderr


def start_app(env: dict[str, str], *, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    """gunicorn with uvicorn workers, as docker/entrypoint.sh runs it; returns (master, url)."""
    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "tradingsite.asgi:application", "-k",
         "tradingsite.uvicorn_worker.UvicornWorker", "--preload", "-w", str(workers),
         "-b", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, server)
    except AssertionError:
        server.kill()
        raise
    return server, f"http://127.0.0.1:{port}"


def child_pids(parent: int) -> set[int]:
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                pids.add(int(stat.parent.name))
    return pids


def process_tree(proc: subprocess.Popen) -> set[int]:
    """A master and its direct children (gunicorn's workers, a Celery worker's pool)."""
    return {proc.pid, *child_pids(proc.pid)}


def obtain_token(url: str, username: str, password: str, *, client_ip: str) -> str:
    # Setup, not measured: a worker's first request on a busy machine may take a while.
    response = login(url, username, password, client_ip=client_ip, timeout=SETUP_TIMEOUT_S)
    assert response.status_code == 200, response.text
    return response.json()["access"]


def login(
    url: str, username: str, password: str, *, client_ip: str, timeout: float = CLIENT_TIMEOUT_S
) -> requests.Response:
    return requests.post(
        f"{url}/api/v1/auth/token/",
        json={"username": username, "password": password},
        headers={**HTTPS, "X-Forwarded-For": client_ip},
        timeout=timeout,
    )


# --- the load -----------------------------------------------------------------------------------

Request = Callable[[requests.Session, int], requests.Response]
# A thread's connection idle longer than this is not reused: gunicorn's uvicorn workers close
# idle keep-alive connections after gunicorn's `keepalive` (2 s), and a request sent on one as
# it closes fails with no server at fault.
KEEPALIVE_IDLE_S = 1.0


@dataclass
class Sample:
    kind: str
    sent: float  # time.monotonic() when the request was due
    wall: float  # time.time() at the same instant (rate-limit windows are wall-clock aligned)
    latency: float
    status: int  # 0: no HTTP answer (connection error or client timeout)
    note: str = ""  # what the scenario's `inspect` read from the response
    retry_after: str = ""  # the Retry-After header, if any
    index: int = 0  # the request's number in the schedule

    @property
    def done(self) -> float:
        return self.sent + self.latency


@dataclass
class Load:
    """Requests on a fixed schedule (open loop: a stall shows in the latencies instead of
    lowering the rate, so no coordinated omission), each kind in turn, from a thread pool."""

    url: str
    rps: float
    kinds: dict[str, Request]
    inspect: Callable[[str, requests.Response], str] | None = None
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
        if session is not None and time.monotonic() - self._local.used > KEEPALIVE_IDLE_S:
            session.close()  # the server may be closing it right now: a race, not a fault
            session = None
        if session is None:
            session = self._local.session = requests.Session()  # keep-alive per thread
        self._local.used = time.monotonic()
        wall = time.time() - (time.monotonic() - due)
        note, status, retry_after = "", 0, ""
        try:
            response = self.kinds[kind](session, i)
            status, retry_after = response.status_code, response.headers.get("Retry-After", "")
            if self.inspect is not None:
                with contextlib.suppress(ValueError, KeyError):  # an unexpected body: no note
                    note = self.inspect(kind, response)
        except requests.RequestException as exc:
            note = f"{type(exc).__name__}: {str(exc)[-60:]}"  # why there was no answer
            session.close()
            self._local.session = None
        latency = time.monotonic() - due
        self._local.used = time.monotonic()
        self.samples.append(Sample(kind, due, wall, latency, status, note, retry_after, i))

    def stop(self) -> None:
        self._stop.set()


def warm_up(load: Load, *, rounds: int = 6, skip: tuple[str, ...] = ()) -> None:
    """A few requests of every kind (negative indexes) before the measured run, so that the
    baseline is not each worker's first imports; setup, so a slow answer here is no failure."""
    with requests.Session() as session:
        for i in range(rounds):
            for name, kind in load.kinds.items():
                if name not in skip:
                    with contextlib.suppress(requests.RequestException):
                        kind(session, -1 - i)


class Running:
    """Load sources on their own threads from `start()` to `stop()`."""

    def __init__(self, *sources: Load) -> None:
        self.sources = sources
        self.threads = [threading.Thread(target=s.run, daemon=True) for s in sources]

    def start(self) -> Running:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        for source in self.sources:
            source.stop()
        for thread in self.threads:  # each waits for its requests in flight
            thread.join(timeout=SETUP_TIMEOUT_S)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- websocket clients -------------------------------------------------------------------------

RECONNECT_DELAY_S = 1.0  # as static/dashboard/live.js starts its backoff


@dataclass
class StreamConnection:
    """One websocket connection of a client: when it opened, what came first, how it ended."""

    opened: float
    first: dict = field(default_factory=dict)  # the first message
    events: list[float] = field(default_factory=list)  # when each event (with an id) arrived
    closed: float | None = None
    close_code: int | None = None  # the server's close code; 1006: no close frame at all


class StreamClients:
    """`count` clients of `ws /ws/stream` on a thread of their own, each reconnecting after
    RECONNECT_DELAY_S with `last_event_id` when its socket closes, as the dashboards do."""

    def __init__(self, url: str, count: int) -> None:
        self.url, self.count = url, count
        self.connections: list[list[StreamConnection]] = [[] for _ in range(count)]
        self.refused: list[list[tuple[float, str]]] = [[] for _ in range(count)]
        self._stopping = False
        self._thread = threading.Thread(target=lambda: asyncio.run(self._all()), daemon=True)

    def start(self) -> StreamClients:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._thread.join(timeout=CLIENT_TIMEOUT_S + 5)

    async def _all(self) -> None:
        await asyncio.gather(*(self._client(n) for n in range(self.count)))

    async def _client(self, n: int) -> None:
        last_id: int | None = None
        while not self._stopping:
            url = self.url if last_id is None else f"{self.url}&last_event_id={last_id}"
            conn: StreamConnection | None = None
            try:
                async with websockets.connect(url, open_timeout=5, ping_interval=None) as ws:
                    conn = StreamConnection(opened=time.monotonic())
                    self.connections[n].append(conn)
                    while not self._stopping:
                        with contextlib.suppress(TimeoutError):  # recv() may be cancelled
                            message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                            conn.first = conn.first or message
                            if isinstance(message.get("id"), int):
                                conn.events.append(time.monotonic())
                                last_id = max(last_id or 0, message["id"])
            except websockets.ConnectionClosed as exc:
                if conn is not None:
                    conn.closed = time.monotonic()
                    conn.close_code = exc.rcvd.code if exc.rcvd else 1006
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                self.refused[n].append((time.monotonic(), type(exc).__name__))
            if not self._stopping:
                await asyncio.sleep(RECONNECT_DELAY_S)


# --- the verdict --------------------------------------------------------------------------------


@dataclass
class Criterion:
    name: str
    ok: bool
    detail: str


def report(title: str, criteria: list[Criterion], figures: dict[str, float]) -> str:
    lines = [f"{title}: " + ", ".join(f"{k}={v:.2f}" for k, v in figures.items())]
    lines += [f"  {'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in criteria]
    passed = sum(c.ok for c in criteria)
    lines.append(f"{passed} passed, {len(criteria) - passed} failed")
    return "\n".join(lines)


def assert_passed(criteria: list[Criterion]) -> None:
    failed = [f"{c.name}: {c.detail}" for c in criteria if not c.ok]
    assert not failed, "\n".join(failed)


def statuses(samples: list[Sample]) -> list[tuple[str, int]]:
    """The distinct (kind, status) pairs of `samples`, a few, for a criterion's detail."""
    return sorted({(s.kind, s.status) for s in samples})[:6]
