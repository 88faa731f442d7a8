"""Model serving latency over HTTP (issue 6): POST /api/v1/models/{name}/predict against the online
feature lookup alone, measured in the same run on the same server.

Served as in production, as bench/bench_feature_store.py (d) serves the online lookup:
ENVIRONMENT=production (pooled PostgreSQL, Redis), gunicorn with one uvicorn worker, JWT; the
client is a keep-alive http.client connection sending X-Forwarded-Proto: https as the TLS proxy
would. Set-up (not timed): a fresh database of its own and a Redis database of its own, 50 symbols
of demo daily bars ending now, core_technical materialized (offline + online store), a model
trained on it with `experiments.train.model_train`, registered and promoted to Production (the
policy's metric floors are overridden with a justification: the demo data has no edge).

Timed, for 1 and for 50 symbols: GET /api/v1/feature-views/core_technical/online (the baseline:
the online lookup alone) and POST /api/v1/models/<model>/predict (the Production check, the same
online lookup, inference, and the prediction log rows queued for the background writer, which
writes them with one COPY and one aggregated `predictions.served` event per flush: production's
PREDICTION_LOG_MODE=background). ROUNDS rounds of CALLS_PER_ROUND sequential requests per case,
the four cases interleaved so that drift of the machine during the run touches them alike, after
WARMUP requests each. Targets: predict p99 <= 15 ms for 1 symbol and <= 30 ms for 50.

Also reported: the first predict of a freshly started server, with PREDICTION_WARMUP off and on
(login first, so both pay the process's first request elsewhere), and whether every logged row
reached the database once the server was stopped with SIGTERM (the writer's last batch is written
at the ASGI lifespan shutdown, when the application routes it: registry.prediction_log).

    .venv/bin/python bench/bench_predict.py
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import manage, production_bench_env, progress  # noqa: E402

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tradingsite_bench_predict"
REDIS_URL = "redis://127.0.0.1:6379/5"
USERNAME = "bench_predict"
PASSWORD = "steady-Signal-harbor-42"
MODEL = "bench-direction"
N_SYMBOLS, N_BARS = 50, 300
WARMUP = 50
ROUNDS, CALLS_PER_ROUND = 10, 50  # 500 timed requests per case
TARGET_P99_MS = {1: 15.0, 50: 30.0}


def bench_env(var: Path) -> dict[str, str]:
    return production_bench_env(
        var, database_url=DATABASE_URL, redis_url=REDIS_URL, password=PASSWORD
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = bench_env(Path(tmp))
        problem = subprocess.run([sys.executable, "scripts/services_reachable.py"], cwd=ROOT,
                                 env=env, capture_output=True, text=True)  # fmt: skip
        if problem.returncode:
            reason = " / ".join(problem.stderr.strip().splitlines()) or "services unreachable"
            print(f"predict bench skipped: {reason}")
            return 0
        import redis

        from tests.support import postgres_database

        redis.Redis.from_url(REDIS_URL).flushdb()
        postgres_database(DATABASE_URL, fresh=True)
        manage(env, "migrate", "--noinput")
        manage(env, "create_api_user", USERNAME, "--password-env", "BENCH_PASSWORD", "--admin")
        return subprocess.run([sys.executable, __file__, "--child"], cwd=ROOT, env=env).returncode


# --- child: set-up and measurements -----------------------------------------------------------


def seed_and_promote() -> tuple[object, list[str]]:
    """Bars -> core_technical (offline + online) -> a trained model in Production."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from experiments.train import model_train
    from features.demo import demo_bars
    from features.services import bars_upsert
    from features.store import feature_view_ensure_default
    from registry.models import Stage
    from registry.services import model_version_create_from_run, version_transition

    symbols = [f"P{i:03d}" for i in range(N_SYMBOLS)]
    end = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    bars_upsert(frame=demo_bars(symbols=tuple(symbols), n_bars=N_BARS, end=end), timeframe="1d")
    progress(f"{N_SYMBOLS} symbols x {N_BARS} bars; materializing core_technical")
    view = feature_view_ensure_default()
    progress("training and promoting the model")
    run = model_train(view_name=view.name, symbols=symbols, n_folds=3, run_name="bench")
    version = model_version_create_from_run(model_name=MODEL, run=run, user=None)
    actor = get_user_model().objects.get(username=USERNAME)
    version_transition(
        version=version, to_stage=Stage.PRODUCTION, actor=actor, reason="bench",
        override_justification="bench: demo data, no edge expected",
    )  # fmt: skip
    return view, symbols


def start_gunicorn(port: int, **env: str) -> subprocess.Popen:
    """The production api role (docker/entrypoint.sh) with one worker, on 127.0.0.1:`port`."""
    args = [
        "-m", "gunicorn", "tradingsite.asgi:application", "-k", "uvicorn_worker.UvicornWorker",
        "--preload", "-w", "1", "-b", f"127.0.0.1:{port}",
    ]  # fmt: skip
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def first_predict_ms(body: bytes, *, warmup: bool) -> float:
    """Start a server, log in, time its first predict (1 symbol), stop it."""
    from tests.support import free_port, stop_process, wait_for_port

    port = free_port()
    server = start_gunicorn(port, PREDICTION_WARMUP="true" if warmup else "false")
    try:
        wait_for_port(port, server)
        client = Client(port)
        started = time.perf_counter()
        check("predict", 1, *client.send("POST", f"/api/v1/models/{MODEL}/predict", body))
        return (time.perf_counter() - started) * 1000
    finally:
        stop_process(server)


class Client:
    """One keep-alive connection, as a trading client holds it."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
        body = json.dumps({"username": USERNAME, "password": PASSWORD})
        status, answer = self.send("POST", "/api/v1/auth/token/", body.encode())
        if status != 200:
            raise RuntimeError(f"login: HTTP {status} {answer[:300]!r}")
        self.headers["Authorization"] = f"Bearer {json.loads(answer)['access']}"

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def cases(view_name: str, symbols: list[str]) -> dict[tuple[str, int], tuple]:
    """(kind, symbols) -> (method, path, body); the same symbols for both kinds."""
    chosen = {1: symbols[:1], N_SYMBOLS: symbols}
    result = {}
    for count, names in chosen.items():
        online = f"/api/v1/feature-views/{view_name}/online?symbols={','.join(names)}"
        result[("online", count)] = ("GET", online, None)
        body = json.dumps({"symbols": names}).encode()
        result[("predict", count)] = ("POST", f"/api/v1/models/{MODEL}/predict", body)
    return result


def check(kind: str, count: int, status: int, answer: bytes) -> dict:
    if status != 200:
        raise RuntimeError(f"{kind} {count}: HTTP {status} {answer[:300]!r}")
    body = json.loads(answer)
    entries = body["results"] if kind == "online" else body["predictions"]
    if len(entries) != count:
        raise RuntimeError(f"{kind} {count}: {len(entries)} entries")
    if kind == "online" and any(e["values"] is None for e in entries):
        raise RuntimeError(f"online lookup returned missing values: {entries[:2]}")
    if kind == "predict" and any(e["error"] for e in entries):
        raise RuntimeError(f"predict returned errors: {entries[:2]}")
    return body


def measure(client: Client, plan: dict) -> tuple[dict, dict]:
    """Wall-clock seconds per request per case, and the server's own latency_ms for predict."""
    timings: dict = {key: [] for key in plan}
    server_ms: dict = {key: [] for key in plan if key[0] == "predict"}
    for key, (method, path, body) in plan.items():
        for _ in range(WARMUP):
            check(*key, *client.send(method, path, body))
    for _ in range(ROUNDS):
        for key, (method, path, body) in plan.items():
            for _ in range(CALLS_PER_ROUND):
                started = time.perf_counter()
                status, answer = client.send(method, path, body)
                timings[key].append(time.perf_counter() - started)
                answered = check(*key, status, answer)
                if key in server_ms:
                    server_ms[key].append(answered["latency_ms"])
    return timings, server_ms


def percentiles(values: list[float], scale: float = 1000.0) -> tuple[float, float]:
    import numpy as np

    array = np.asarray(values) * scale
    return float(np.percentile(array, 50)), float(np.percentile(array, 99))


def child() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    django.setup()
    from django.db import connection

    from registry.models import PredictionLog
    from tests.support import free_port, stop_process, wait_for_port
    from tradingsite.models import Event

    started = time.perf_counter()
    view, symbols = seed_and_promote()
    connection.close()
    plan = cases(view.name, symbols)
    progress("timing the first predict of a fresh server, warm-up off and on")
    body = json.dumps({"symbols": symbols[:1]}).encode()
    cold = {flag: first_predict_ms(body, warmup=flag) for flag in (False, True)}
    cold_rows = PredictionLog.objects.count()
    port = free_port()
    server = start_gunicorn(port)
    try:
        wait_for_port(port, server)
        progress(f"timing {len(plan)} cases x {ROUNDS * CALLS_PER_ROUND} requests, interleaved")
        timings, server_ms = measure(Client(port), plan)
    finally:
        stop_process(server)
    calls = WARMUP + ROUNDS * CALLS_PER_ROUND
    logged = PredictionLog.objects.count() - cold_rows
    events = Event.objects.filter(type="predictions.served")
    announced = sum(e.payload["requests"] for e in events) - len(cold)
    expected_rows = calls * (1 + N_SYMBOLS)

    print(
        f"predict bench: PostgreSQL {urlsplit(DATABASE_URL).path.lstrip('/')}, Redis "
        f"{urlsplit(REDIS_URL).netloc}{urlsplit(REDIS_URL).path}; production profile, gunicorn + "
        f"1 uvicorn worker, JWT, keep-alive http.client; {view} ({len(view.feature_names)} "
        f"features); {ROUNDS * CALLS_PER_ROUND} sequential requests per row after {WARMUP} "
        "warm-up, the four rows interleaved"
    )
    for count in (1, N_SYMBOLS):
        label = f"{count} symbol" + ("s" if count > 1 else "")
        o50, o99 = percentiles(timings[("online", count)])
        p50, p99 = percentiles(timings[("predict", count)])
        s50, s99 = percentiles(server_ms[("predict", count)], scale=1.0)
        target = TARGET_P99_MS[count]
        verdict = "OK" if p99 <= target else "MISSED"
        print(f"  {label}:")
        print(f"    {'baseline: GET /online (lookup alone)':<46} p50 {o50:7.3f} ms  "
              f"p99 {o99:7.3f} ms")  # fmt: skip
        print(f"    {'POST /predict':<46} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms   "
              f"predict/online: p50 {p50 / o50:.2f}x, p99 {p99 / o99:.2f}x   "
              f"target p99 <= {target:.0f} ms: {verdict}")  # fmt: skip
        print(f"    {'  info: latency_ms reported by the service':<46} p50 {s50:7.3f} ms  "
              f"p99 {s99:7.3f} ms")  # fmt: skip
    print(
        f"  prediction log once the server stopped: {logged:,} rows "
        f"(expected {expected_rows:,}); {events.count() - len(cold):,} predictions.served "
        f"events announcing {announced:,} requests (expected {2 * calls:,})"
    )
    print(
        f"  first predict of a fresh server (after its login): {cold[False]:,.0f} ms with "
        f"PREDICTION_WARMUP off, {cold[True]:,.0f} ms with it on"
    )
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child()
    else:
        sys.exit(main())
