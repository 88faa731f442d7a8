"""Experiment tracking throughput (issue 5): tradingsite vs MLflow's own local store.

In one run, on this machine:
(a) the official MLflow client (mlflow-skinny, our .venv) against tradingsite served as in
    production (ENVIRONMENT=production: pooled PostgreSQL, Redis; gunicorn + 1 uvicorn worker;
    a personal API token as MLFLOW_TRACKING_TOKEN; X-Forwarded-Proto: https as the TLS proxy
    would send): 10,000 `log_metric` calls one by one (p50/p99 ms per call), 10 `log_batch`
    calls of 1,000 metrics, and runs created per second (create_run + set_terminated);
(b) the native batch API, POST /api/v1/runs/{id}/log-batch with 10,000 metric points per
    request (bodies encoded before timing), metrics per second;
(c) the same MLflow-client workload against MLflow's local `sqlite` tracking store, run with
    the full `mlflow` package in a bench-only virtualenv (var/bench/mlflow-venv, created on
    first use; skipped with a reason when it cannot be installed);
plus `search_runs` latency (MLflow client, filter on a metric, a param and a tag, ordered by a
metric, 100 results) at 10,000 and at 100,000 runs in one experiment; and, for information, the
MLflow client against an app that answers `{}` at once (bench/empty_asgi.py): what the client
itself costs per call, a floor under (a) that no server can go below.

Targets: single log_metric <= 3 ms p50 over HTTP; MLflow-client log_batch >= 5x MLflow's local
store; native batch >= 10x it and >= 65,000 metrics/s; search at 100,000 runs < 1 s.

    .venv/bin/python bench/bench_tracking.py
"""

from __future__ import annotations

import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import manage, production_bench_env, progress  # noqa: E402

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tradingsite_bench_tracking"
REDIS_URL = "redis://127.0.0.1:6379/4"
USERNAME = "bench_tracking"
PASSWORD = "quiet-Harbor-lantern-71"
WORKLOAD = ROOT / "bench" / "mlflow_workload.py"
MLFLOW_VENV = ROOT / "var" / "bench" / "mlflow-venv"
NATIVE_BATCH = 10_000
NATIVE_REQUESTS = 10
SEARCH_SIZES = (10_000, 100_000)
SEARCH_CALLS = 20
SEARCH_FILTER = "metrics.accuracy > 0.7 and params.model = 'lr' and tags.team = 'alpha'"


def bench_env(var: Path) -> dict[str, str]:
    return production_bench_env(
        var, database_url=DATABASE_URL, redis_url=REDIS_URL, password=PASSWORD
    )


def workload(python: str, uri: str, env: dict[str, str], *extra: str) -> dict:
    done = subprocess.run([python, str(WORKLOAD), uri, *extra], env=env, capture_output=True,
                          text=True, timeout=1200)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"workload failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mlflow_venv_python() -> tuple[str | None, str]:
    """The bench-only MLflow (full package, with the sqlite store), same version as our client."""
    python = MLFLOW_VENV / "bin" / "python"
    pin = next(
        line.strip()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line.startswith("mlflow-skinny==")
    ).replace("mlflow-skinny", "mlflow")
    if not python.exists():
        progress(f"creating {MLFLOW_VENV} with {pin} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    installed = subprocess.run([str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                               capture_output=True, text=True)  # fmt: skip
    if installed.returncode or installed.stdout.strip() != pin.split("==")[1]:
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", pin],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            return None, f"pip install {pin} failed: {done.stderr.strip().splitlines()[-1:]}"
    return str(python), pin


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "X-Forwarded-Proto": "https",
        }

    def post(self, path: str, body: bytes | dict) -> dict:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.conn.request("POST", path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path}: HTTP {response.status} {answer[:300]!r}")
        return json.loads(answer)


def native_batch(api: Api) -> tuple[int, float]:
    experiment = api.post("/api/2.0/mlflow/experiments/create", {"name": f"native-{uuid.uuid4()}"})
    run = api.post("/api/2.0/mlflow/runs/create", {"experiment_id": experiment["experiment_id"]})[
        "run"
    ]["info"]["run_id"]
    now = int(time.time() * 1000)
    bodies = [
        json.dumps(
            {
                "metrics": [
                    {
                        "key": f"m{i % 50}",
                        "value": i * 0.5,
                        "step": r * NATIVE_BATCH + i,
                        "timestamp": now,
                    }  # fmt: skip
                    for i in range(NATIVE_BATCH)
                ]
            }
        ).encode()
        for r in range(NATIVE_REQUESTS + 1)
    ]
    api.post(f"/api/v1/runs/{run}/log-batch", bodies[0])  # warm-up
    started = time.perf_counter()
    for body in bodies[1:]:
        api.post(f"/api/v1/runs/{run}/log-batch", body)
    return NATIVE_BATCH * NATIVE_REQUESTS, time.perf_counter() - started


def seed_runs(target: int) -> None:
    """Child (Django set up): grow the "search-bench" experiment to `target` finished runs, each
    with params model/lr, tag team and latest metrics accuracy/loss (bulk inserts)."""
    from experiments.models import Experiment, LatestMetric, Param, Run, RunTag

    experiment, _ = Experiment.objects.get_or_create(name="search-bench")
    have = Run.objects.filter(experiment=experiment).count()
    rng = random.Random(have)
    now = int(time.time() * 1000)
    for start in range(have, target, 5_000):
        count = min(5_000, target - start)
        runs = Run.objects.bulk_create(
            Run(
                run_uuid=uuid.uuid4().hex,
                experiment=experiment,
                name=f"r{start + i}",
                status="FINISHED",
                start_time=now - start - i,
                end_time=now,
            )  # fmt: skip
            for i in range(count)
        )
        Param.objects.bulk_create(
            Param(run=run, key=key, value=value)
            for run in runs
            for key, value in (("model", rng.choice(("lr", "gbm", "rf"))), ("lr", "0.01"))
        )
        RunTag.objects.bulk_create(
            RunTag(run=run, key="team", value=rng.choice(("alpha", "beta"))) for run in runs
        )
        LatestMetric.objects.bulk_create(
            LatestMetric(run=run, key=key, value=rng.random(), step=0, timestamp=now)
            for run in runs
            for key in ("accuracy", "loss")
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(experiment.pk)


def search_latency(uri: str, experiment_id: str) -> tuple[float, float, int]:
    import mlflow
    from mlflow.tracking import MlflowClient

    sys.argv = [sys.argv[0]]
    from bench.mlflow_workload import _send_forwarded_proto

    _send_forwarded_proto()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    found = client.search_runs([experiment_id], SEARCH_FILTER, max_results=100,
                               order_by=["metrics.accuracy DESC"])  # fmt: skip
    seconds = []
    for _ in range(SEARCH_CALLS):
        started = time.perf_counter()
        client.search_runs([experiment_id], SEARCH_FILTER, max_results=100,
                           order_by=["metrics.accuracy DESC"])  # fmt: skip
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    return statistics.median(seconds), seconds[-1], len(found)


def main() -> int:
    from tests.support import free_port, postgres_database, stop_process, wait_for_port

    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        env = bench_env(var)
        problem = subprocess.run([sys.executable, "scripts/services_reachable.py"], cwd=ROOT,
                                 env=env, capture_output=True, text=True)  # fmt: skip
        if problem.returncode:
            print(f"tracking bench skipped: {problem.stderr.strip() or 'services unreachable'}")
            return 0
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        postgres_database(DATABASE_URL, fresh=True)
        manage(env, "migrate", "--noinput")
        manage(env, "create_api_user", USERNAME, "--password-env", "BENCH_PASSWORD")
        token = manage(env, "create_api_token", USERNAME, "--name", "bench").strip()
        port = free_port()
        args = ["-m", "gunicorn", "tradingsite.asgi:application", "-k",
                "uvicorn_worker.UvicornWorker", "--preload", "-w", "1",
                "-b", f"127.0.0.1:{port}"]  # fmt: skip
        server = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        uri = f"http://127.0.0.1:{port}"
        client_env = {**env, "MLFLOW_TRACKING_TOKEN": token}
        try:
            wait_for_port(port, server)
            progress("(a) MLflow client -> tradingsite")
            ours = workload(sys.executable, uri, client_env, "--behind-tls-proxy")
            progress("(b) native batch API")
            native_n, native_s = native_batch(Api(port, token))
            searches = []
            for size in SEARCH_SIZES:
                progress(f"search: seeding {size:,} runs")
                seeded = subprocess.run(
                    [sys.executable, __file__, "--seed", str(size)], cwd=ROOT, env=env,
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                experiment_id = seeded.stdout.strip().splitlines()[-1]
                progress(f"search at {size:,} runs")
                searched = subprocess.run(
                    [sys.executable, __file__, "--search", uri, experiment_id], cwd=ROOT,
                    env=client_env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                searches.append((size, *json.loads(searched.stdout.strip().splitlines()[-1])))
        finally:
            stop_process(server)
        progress("info: MLflow client -> an empty server")
        client_only = empty_server_workload(client_env)

        progress("(c) MLflow client -> MLflow's local sqlite store")
        python, pin = mlflow_venv_python()
        theirs, skipped = None, ""
        if python is None:
            skipped = pin
        else:
            store = var / "mlflow-store"
            store.mkdir()
            theirs = workload(python, f"sqlite:///{store / 'mlflow.db'}", dict(os.environ))

    report(ours, native_n, native_s, theirs, skipped, pin, searches, client_only)
    return 0


def empty_server_workload(env: dict[str, str]) -> dict:
    from tests.support import free_port, stop_process, wait_for_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.empty_asgi:app", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        wait_for_port(port, server)
        return workload(sys.executable, f"http://127.0.0.1:{port}", env, "--client-only",
                        "--one-by-one", "2000")  # fmt: skip
    finally:
        stop_process(server)


def report(ours, native_n, native_s, theirs, skipped, pin, searches, client_only) -> None:  # noqa: ANN001
    def rate(result: dict, kind: str) -> float:
        if kind == "one":
            return result["one_by_one"] / result["one_by_one_s"]
        if kind == "batch":
            return result["batch_metrics"] / result["batch_s"]
        return result["runs"] / result["runs_s"]

    native_rate = native_n / native_s
    print("experiment tracking bench: tradingsite in the production profile (gunicorn + 1 "
          f"uvicorn worker, PostgreSQL, Redis); MLflow baseline: {pin}, sqlite store")  # fmt: skip
    print(f"  {'':<44} {'tradingsite':>14} {'MLflow sqlite':>14} {'ratio':>8}")

    def row(label: str, value: float, base: float | None, unit: str) -> None:
        base_text = f"{base:>14,.0f}" if base else f"{'-':>14}"
        ratio = f"{value / base:>7.1f}x" if base else f"{'':>8}"
        print(f"  {label:<44} {value:>14,.0f} {base_text} {ratio}  {unit}")

    row("MLflow client log_metric, one by one", rate(ours, "one"),
        theirs and rate(theirs, "one"), "metrics/s")  # fmt: skip
    verdict = "OK" if ours["log_metric_p50_ms"] <= 3 else "MISSED"
    base = (
        f"   MLflow {theirs['log_metric_p50_ms']:.2f} / {theirs['log_metric_p99_ms']:.2f} ms"
        if theirs
        else ""
    )
    print(f"  {'  per call p50 / p99':<44} {ours['log_metric_p50_ms']:>8.2f} / "
          f"{ours['log_metric_p99_ms']:.2f} ms{base}   target p50 <= 3 ms: {verdict}")  # fmt: skip
    row("MLflow client log_batch(1,000)", rate(ours, "batch"),
        theirs and rate(theirs, "batch"), "metrics/s  (target >= 5x)")  # fmt: skip
    row(f"native POST log-batch ({NATIVE_BATCH:,} points)", native_rate,
        theirs and rate(theirs, "batch"), "metrics/s  (target >= 10x and >= 65,000/s)")  # fmt: skip
    row("runs created (create_run + set_terminated)", rate(ours, "runs"),
        theirs and rate(theirs, "runs"), "runs/s")  # fmt: skip
    print(
        f"  info: the MLflow client alone (empty server): log_metric p50 "
        f"{client_only['log_metric_p50_ms']:.2f} ms, log_batch(1,000) "
        f"{client_only['batch_metrics'] / client_only['batch_s']:,.0f} metrics/s"
    )
    if skipped:
        print(f"  MLflow baseline skipped: {skipped}")
    for size, p50, worst, found in searches:
        verdict = "OK" if p50 < 1 else "MISSED"
        print(f"  search_runs at {size:>7,} runs ({found} found, {SEARCH_FILTER!r}, order by "
              f"metrics.accuracy DESC): p50 {p50 * 1000:.0f} ms, max {worst * 1000:.0f} ms"
              f"   target < 1 s: {verdict}")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["--seed"]:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
        django.setup()
        seed_runs(int(sys.argv[2]))
    elif sys.argv[1:2] == ["--search"]:
        print(json.dumps(search_latency(sys.argv[2], sys.argv[3])))
    else:
        sys.exit(main())
