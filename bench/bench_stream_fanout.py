"""Websocket fan-out: N clients on /ws/stream, events published through the outbox.

For each profile (embedded: SQLite + in-memory layer + outbox relay; redis: PostgreSQL +
channels-redis) a daphne server is started, N clients subscribe, and events are published from
this process with `event_publish` (a separate process from the server, as a Celery worker would
be). Printed per N: deliveries per second, p50/p99 publish->receive latency, and the p99 as a
ratio of the single-client p99 measured in the same run (the baseline).

    python bench/bench_stream_fanout.py            # both profiles (redis skipped if unreachable)
    BENCH_CLIENTS=1,100,500 BENCH_EVENTS=40 python bench/bench_stream_fanout.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS = [int(n) for n in os.environ.get("BENCH_CLIENTS", "1,100,500").split(",")]
EVENTS = int(os.environ.get("BENCH_EVENTS", "40"))
SPACING_SECONDS = 0.02
PASSWORD = "bench-Stream-pass-1"


def profile_env(profile: str, var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TRADINGSITE_VAR_DIR=str(var), LOG_LEVEL="WARNING", OPS_PASSWORD=PASSWORD)
    env["DATABASE_URL"] = f"sqlite:///{var / 'db.sqlite3'}"
    if profile == "redis":
        env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/tradingsite_bench"
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    return env


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(ws_url: str, clients: int) -> dict[str, float]:
    import websockets
    from asgiref.sync import sync_to_async

    from tradingsite.events import event_publish

    latencies: list[float] = []
    received = asyncio.Event()
    expected = clients * EVENTS
    gate = asyncio.Semaphore(50)

    async def connect() -> object:
        async with gate:
            # No client pings: under load a late pong would close the socket and skew the count.
            return await websockets.connect(
                ws_url, open_timeout=30, max_queue=None, ping_interval=None
            )

    async def listen(ws: object) -> None:
        async for raw in ws:  # type: ignore[attr-defined]
            latencies.append(time.time() - json.loads(raw)["payload"]["sent_at"])
            if len(latencies) >= expected:
                received.set()

    sockets = await asyncio.gather(*(connect() for _ in range(clients)))
    tasks = [asyncio.create_task(listen(ws)) for ws in sockets]
    publish = sync_to_async(event_publish, thread_sensitive=True)
    started = time.time()
    for i in range(EVENTS):
        await publish(type="system.bench.tick", payload={"i": i, "sent_at": time.time()})
        await asyncio.sleep(SPACING_SECONDS)
    with contextlib.suppress(TimeoutError):  # a shortfall shows in the `delivered` column
        await asyncio.wait_for(received.wait(), timeout=60)
    elapsed = time.time() - started
    for ws in sockets:
        await ws.close()  # type: ignore[attr-defined]
    for task in tasks:
        task.cancel()
    return {
        "clients": clients,
        "delivered": len(latencies),
        "expected": expected,
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000 if latencies else float("nan"),
        "p99_ms": percentile(latencies, 0.99) * 1000 if latencies else float("nan"),
    }


def child(profile: str) -> None:
    """Runs with the profile's environment: starts daphne, measures every N, prints JSON rows."""
    import django
    import requests

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    django.setup()
    from tests.support import free_port, start_daphne, wait_for_port

    port = free_port()
    server = start_daphne(
        port, dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, server)
        token = requests.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token/",
            json={"username": "ops", "password": PASSWORD},
            timeout=10,
        ).json()["access"]
        url = f"ws://127.0.0.1:{port}/ws/stream?token={token}&topics=system"
        for clients in CLIENTS:
            print(json.dumps(asyncio.run(measure(url, clients))), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_profile(profile: str) -> list[dict[str, float]] | str:
    with tempfile.TemporaryDirectory() as tmp:
        env = profile_env(profile, Path(tmp))
        if profile == "redis":
            problem = subprocess.run(
                [sys.executable, "scripts/services_reachable.py"], cwd=ROOT, env=env,
                capture_output=True, text=True,
            )  # fmt: skip
            if problem.returncode:
                return f"skipped: {problem.stderr.strip()}"
            from tests.support import postgres_database

            postgres_database(env["DATABASE_URL"])
        for args in (
            ["migrate", "--noinput"],
            ["create_api_user", "ops", "--password-env", "OPS_PASSWORD"],
        ):
            subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                           capture_output=True)  # fmt: skip
        out = subprocess.run(
            [sys.executable, __file__, "--child", profile], cwd=ROOT, env=env,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    print(f"websocket fan-out: {EVENTS} events, {SPACING_SECONDS * 1000:.0f} ms apart")
    header = (
        f"{'profile':<9} {'clients':>7} {'delivered':>11} {'deliv/s':>9} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'p99 vs 1':>9}"
    )
    for profile in ("embedded", "redis"):
        rows = run_profile(profile)
        if isinstance(rows, str):
            print(f"{profile:<9} {rows}")
            continue
        print(header)
        baseline = rows[0]["p99_ms"]
        for row in rows:
            print(
                f"{profile:<9} {row['clients']:>7} {row['delivered']:>5}/{row['expected']:<5} "
                f"{row['per_second']:>9.0f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} "
                f"{row['p99_ms'] / baseline:>8.2f}x"
            )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
