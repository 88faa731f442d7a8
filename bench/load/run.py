"""reliability.md T4, load and latency: fixed-rate open-loop traffic against the production profile.

The server is started as docker/entrypoint.sh's api role starts it (gunicorn, WORKERS uvicorn
workers of tradingsite.uvicorn_worker, --preload) on a database of its own (`ts_bench_load` on the
shared PostgreSQL) and Redis db 4, pinned to CPU 0; the load generator (bench/load/openloop.py,
open loop: every latency counts from the request's scheduled send time) is pinned to CPU 1, so
that on 2 cores the client does not steal the server's CPU (PostgreSQL and Redis float).
Set-up (not timed): bench/load/seed.py (demo bars, core_technical materialized, a model in
Production) and one JWT login.

Phases, PHASE_S each (15 s; --full: 300 s, the table's "5 min"), each one alone, then all mixed:
  baseline  GET /health of bench/empty_asgi.py under the same server: the floor of the stack
  health    GET /health                                     200/s  T4: p99 < 50 ms, 0 errors
  list      GET /api/v1/market/bars?symbol=..&limit=50      50/s   T4: p99 < 250 ms (a page of 50)
  online    GET /api/v1/feature-views/core_technical/online  20/s  (no T4 figure)
  predict   POST /api/v1/models/<model>/predict, 1 symbol  20/s   (no T4 figure; bench_predict)
  write     POST /api/v1/market/bars, one new bar           10/s   T4: p99 < 500 ms
  mixed     all of the above at once, each rate scaled to use <= 70% of the server's CPU by
            what each endpoint took alone (the full 300/s mix needs more than one core) or
            by --mix-scale; the same T4 bounds are shown, at those rates
Then `wrk -t1 -c32 -d10s --latency` (closed loop: capacity, not latency) on /health of the empty
app and of tradingsite, when wrk is installed. --soak MINUTES: the mixed load for that long,
sampling the server's RSS (all processes), open file descriptors and PostgreSQL connections:
T4 wants RSS growth < 10% after warm-up, FDs within 5%, connections <= the pool, 0 x 5xx.

    .venv/bin/python bench/load/run.py [--full] [--soak MINUTES] [--workers N]
                                       [--phase-seconds S] [--mix-scale X]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.common import manage, production_bench_env, progress  # noqa: E402
from bench.load import report  # noqa: E402
from bench.load.report import Phase  # noqa: E402

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ts_bench_load"
REDIS_URL = "redis://127.0.0.1:6379/4"
USERNAME, PASSWORD = "bench_load", "steady-Load-harbor-42"
MODEL = "bench-load-direction"
N_SYMBOLS, N_BARS = 20, 300
HTTPS = {"X-Forwarded-Proto": "https"}  # as the TLS proxy sends it (SECURE_PROXY_SSL_HEADER)
RATES = {"health": 200.0, "list": 50.0, "online": 20.0, "predict": 20.0, "write": 10.0}
EXPECTED_STATUS = {"write": 201}  # every other kind: 200
PHASE_S, FULL_PHASE_S = 15.0, 300.0
SAMPLE_EVERY_S = 5.0
WRITE_EPOCH, WRITE_SPAN_S = 946_684_800, 10**8  # 2000-01-01; ~3 years (> a day of 1m bars)
_write_spans = itertools.count()
MIX_CPU_SHARE = 0.7  # the mixed phase's rates are scaled to use at most this share of the server


def targets(
    kinds: list[str], token: str, view: str, symbols: list[str], scale: float = 1.0
) -> list[dict]:
    auth = {**HTTPS, "Authorization": f"Bearer {token}"}
    bar = '{"ts": "{ts}", "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 10}'
    every = {
        "health": {"method": "GET", "path": "/health", "headers": HTTPS},
        "list": {"method": "GET", "headers": auth,
                 "path": "/api/v1/market/bars?symbol={sym}&timeframe=1d&limit=50"},
        "online": {"method": "GET", "headers": auth,
                   "path": f"/api/v1/feature-views/{view}/online?symbols={{sym}}"},
        "predict": {"method": "POST", "headers": auth, "path": f"/api/v1/models/{MODEL}/predict",
                    "body": '{"symbols": ["{sym}"]}'},
        "write": {"method": "POST", "headers": auth, "path": "/api/v1/market/bars",
                  # a new minute bar per request, in a span of time of each plan's own
                  "body": f'{{"symbol": "LOADW", "timeframe": "1m", "bars": [{bar}]}}',
                  "ts_base": WRITE_EPOCH + next(_write_spans) * WRITE_SPAN_S},
    }  # fmt: skip
    return [{"name": k, "rate": RATES[k] * scale, "symbols": symbols, **every[k]} for k in kinds]


# --- processes ----------------------------------------------------------------------------------


def pinned(cpu: int) -> list[str]:
    """`taskset -c cpu` when there are two CPUs to pin apart, else nothing."""
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


class Server:
    """gunicorn with uvicorn workers (the production api role) on CPU 0."""

    def __init__(self, app: str, env: dict[str, str], workers: int, log: Path) -> None:
        from tests.support import free_port, wait_for_port

        self.port = free_port()
        args = [sys.executable, "-m", "gunicorn", app, "-k",
                "tradingsite.uvicorn_worker.UvicornWorker", "--preload", "-w", str(workers),
                "-b", f"127.0.0.1:{self.port}", "--worker-tmp-dir", "/dev/shm"]  # fmt: skip
        self.proc = subprocess.Popen([*pinned(0), *args], cwd=ROOT, env=env,
                                     stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_for_port(self.port, self.proc)
        except AssertionError as exc:
            self.stop()
            raise RuntimeError(f"{app} did not start: {log.read_text()[-2000:]}") from exc

    def pids(self) -> list[int]:
        """The master and its workers (taskset execs gunicorn: the same pid)."""
        pids = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    pids.append(int(stat.parent.name))
            except (OSError, IndexError, ValueError):
                continue
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU time of every process of the server so far."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
            except (OSError, IndexError, ValueError):
                continue
        return total / os.sysconf("SC_CLK_TCK")

    def resources(self) -> tuple[float, int]:
        """Resident MB and open file descriptors, summed over every process of the server; the
        descriptors leave out the load's own connections, whose number follows the load."""
        clients = self._client_socket_inodes()
        rss_kb, fds = 0, 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                rss_kb += int(status.split("VmRSS:")[1].split()[0])
                for fd in os.scandir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        fds += os.readlink(fd.path) not in clients
            except (OSError, IndexError):
                continue
        return rss_kb / 1024, fds

    def _client_socket_inodes(self) -> set[str]:
        """`socket:[inode]` of every TCP socket whose local port is the server's."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == self.port and fields[3] != "0A":
                        inodes.add(f"socket:[{fields[9]}]")  # 0A: the listening socket
        return inodes

    def stop(self) -> None:
        from tests.support import stop_process

        stop_process(self.proc)


def pg_connections() -> int:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        return conn.execute(query, [name]).fetchone()[0]


def generate(
    name: str, port: int, plan: list[dict], duration: float, server: Server, watch: bool = False
) -> Phase:
    """Run the open-loop generator on CPU 1 for `duration` s, timing the server's CPU; with
    `watch`, sample its resources (and PostgreSQL's connections) every SAMPLE_EVERY_S too."""
    spec = json.dumps({"host": "127.0.0.1", "port": port, "targets": plan, "duration": duration})
    proc = subprocess.Popen([*pinned(1), sys.executable, "-m", "bench.load.openloop"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    samples: list[tuple[float, float, int, int]] = []
    done = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not done.wait(SAMPLE_EVERY_S):
            samples.append((time.monotonic() - started, *server.resources(), pg_connections()))

    sampler = threading.Thread(target=sample, daemon=True)
    if watch:
        sampler.start()
    cpu = server.cpu_seconds()
    out, _ = proc.communicate(spec)
    cpu = server.cpu_seconds() - cpu
    done.set()
    if watch:
        sampler.join()
    if proc.returncode:
        raise RuntimeError(f"the load generator failed (exit {proc.returncode})")
    rates = {t["name"]: t["rate"] for t in plan}
    return Phase(name, duration, rates, json.loads(out), samples, cpu)


def login(port: int) -> str:
    import requests

    body = {"username": USERNAME, "password": PASSWORD}
    url = f"http://127.0.0.1:{port}/api/v1/auth/token/"
    response = requests.post(url, headers=HTTPS, json=body, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"login: HTTP {response.status_code} {response.text[:300]}")
    return response.json()["access"]


def wrk(port: int, path: str) -> dict[str, float] | str:
    """wrk's req/s and p50/p99 (ms) for 10 s at 32 connections, or why there are none."""
    if not shutil.which("wrk"):
        return "wrk is not installed (Debian: apt-get install -y wrk): no capacity figures"
    args = [*pinned(1), "wrk", "-t1", "-c32", "-d10s", "--latency",
            "-H", "X-Forwarded-Proto: https", f"http://127.0.0.1:{port}{path}"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return report.parse_wrk(done.stdout) if done.returncode == 0 else f"wrk: {done.stderr[:200]}"


# --- the run ------------------------------------------------------------------------------------


def prepare(env: dict[str, str]) -> dict:
    import redis

    from tests.support import postgres_database

    redis.Redis.from_url(REDIS_URL).flushdb()
    postgres_database(DATABASE_URL, fresh=True)
    progress("migrating ts_bench_load")
    manage(env, "migrate", "--noinput")
    manage(env, "create_api_user", USERNAME, "--password-env", "BENCH_PASSWORD", "--admin")
    progress(f"seeding {N_SYMBOLS} symbols x {N_BARS} bars, materializing, training, promoting")
    done = subprocess.run(
        [sys.executable, "-m", "bench.load.seed", USERNAME, MODEL, str(N_SYMBOLS), str(N_BARS)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"seeding failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def phases(
    port: int, token: str, seeded: dict, phase_s: float, server: Server, mix_scale: float | None
) -> tuple[list[Phase], float]:
    """Each endpoint alone at its rate, then all together; returns the phases and the scale of
    the mixed rates: `mix_scale`, or what fits MIX_CPU_SHARE of the server's CPU by the CPU per
    second each endpoint took alone (the full mix can need more than the one core it has)."""
    args = (token, seeded["view"], seeded["symbols"])
    progress("warming up every endpoint in every worker")
    generate("warm-up", port, targets(list(RATES), *args), 3.0, server)
    measured = []
    for kind in RATES:
        progress(f"{kind}: {RATES[kind]:g}/s for {phase_s:g} s")
        measured.append(generate("alone", port, targets([kind], *args), phase_s, server))
    need = sum(phase.cpu_s / phase.duration_s for phase in measured)
    scale = mix_scale or min(1.0, MIX_CPU_SHARE * server_cpus() / need)
    progress(f"mixed: {scale * sum(RATES.values()):g}/s for {phase_s:g} s")
    plan = targets(list(RATES), *args, scale=scale)
    measured.append(generate("mixed", port, plan, phase_s, server, watch=True))
    return measured, scale


def server_cpus() -> int:
    return 1 if pinned(0) else len(os.sched_getaffinity(0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="300 s per phase (the table's 5 min)")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="then a mixed-load soak")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument("--phase-seconds", type=float, help="override the length of a phase")
    parser.add_argument("--mix-scale", type=float, help="mixed/soak rates x this (default: fit)")
    args = parser.parse_args()
    phase_s = args.phase_seconds or (FULL_PHASE_S if args.full else PHASE_S)
    started = time.monotonic()
    load_at_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        var = Path(tmp)
        env = production_bench_env(var, database_url=DATABASE_URL, redis_url=REDIS_URL,
                                   password=PASSWORD)  # fmt: skip
        # The bench logs in once: the token must outlive every phase and the soak (--full runs
        # for more than the default 15 minutes).
        minutes = int((len(RATES) + 3) * phase_s / 60 + (args.soak or 0) + 15)
        env.update(WORKERS=str(args.workers), JWT_ACCESS_MINUTES=str(minutes))
        reachable = subprocess.run([sys.executable, "scripts/services_reachable.py"], cwd=ROOT,
                                   env=env, capture_output=True, text=True)  # fmt: skip
        if reachable.returncode:
            reason = " / ".join(reachable.stderr.strip().splitlines()) or "services unreachable"
            print(f"load bench skipped: {reason}")
            return 0
        seeded = prepare(env)
        progress(f"baseline: the empty ASGI app, /health {RATES['health']:g}/s for {phase_s:g} s")
        empty = Server("bench.empty_asgi:app", env, args.workers, var / "empty.log")
        try:
            plan = targets(["health"], "", "", [])
            generate("warm-up", empty.port, plan, 3.0, empty)
            base = generate("baseline", empty.port, plan, phase_s, empty)
            wrk_empty = wrk(empty.port, "/health")
        finally:
            empty.stop()
        server = Server("tradingsite.asgi:application", env, args.workers, var / "server.log")
        try:
            token = login(server.port)
            measured, scale = phases(server.port, token, seeded, phase_s, server, args.mix_scale)
            progress("wrk on /health")
            wrk_app = wrk(server.port, "/health")
            soak = None
            if args.soak:
                progress(f"soak: the mixed load for {args.soak:g} min")
                plan = targets(list(RATES), token, seeded["view"], seeded["symbols"], scale)
                soak = generate("soak", server.port, plan, args.soak * 60, server, watch=True)
        finally:
            server.stop()
    bound = args.workers * (int(env.get("REQUEST_THREADS", "8")) + 2)
    print(report.render(
        base=base, measured=measured, wrk_empty=wrk_empty, wrk_app=wrk_app, soak=soak,
        header=f"load bench (reliability.md T4): production profile, gunicorn + {args.workers} "
        f"uvicorn workers{' on CPU 0, open-loop generator on CPU 1' if pinned(0) else ''}; "
        f"PostgreSQL ts_bench_load, Redis db 4; {phase_s:g} s per phase",
        expected=EXPECTED_STATUS, pool_bound=bound, mix_scale=scale, server_cpus=server_cpus(),
    ))  # fmt: skip
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {time.monotonic() - started:.0f} s; load average at the end {load} "
          f"(at the start {load_at_start})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
