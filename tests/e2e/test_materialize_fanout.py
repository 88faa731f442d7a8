"""Per-symbol fan-out on real processes: two Celery workers on the Redis broker share one
materialization job on PostgreSQL, and the job finishes exactly once."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import redis

from tests.support import (
    PYTHON,
    ROOT,
    manage,
    postgres_database,
    production_env,
    stop_process,
)

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tradingsite_e2e_fanout"
SYMBOLS = [f"S{i:02d}" for i in range(16)]
N_BARS = 600  # enough for every indicator's warm-up; the fan-out, not the volume, is under test

SETUP = f"""
from features.demo import demo_bars
from features.services import bars_upsert
from features.store import feature_view_register, materialization_job_create
bars_upsert(frame=demo_bars(symbols={tuple(SYMBOLS)!r}, n_bars={N_BARS}), timeframe="1d")
view, _ = feature_view_register(name="fanout")
print(materialization_job_create(view=view, mode="full").pk)
"""
SEND = "from features.tasks import feature_view_materialize_task as t; t.delay({job})"


def _worker(name: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    args = ["-m", "celery", "-A", "tradingsite", "worker", "--pool=solo", "-n", f"{name}@%h",
            "--without-mingle", "--without-gossip", "--loglevel=INFO"]  # fmt: skip
    return subprocess.Popen([PYTHON, *args], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)  # fmt: skip


def _wait_ready(log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"worker not ready:\n{log.read_text()[-2000:]}")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_two_workers_share_a_job_and_it_finishes_once(tmp_path: Path) -> None:
    redis_url = "redis://127.0.0.1:6379/7"  # its own broker database: no stray tasks
    redis.Redis.from_url(redis_url).flushdb()
    postgres_database(DATABASE_URL, fresh=True)
    env = production_env(DATABASE_URL=DATABASE_URL, REDIS_URL=redis_url,
                         TRADINGSITE_VAR_DIR=str(tmp_path))  # fmt: skip
    assert manage("migrate", "--noinput", env=env).returncode == 0
    made = manage("shell", "-c", SETUP, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    job_id = int(made.stdout.strip().splitlines()[-1])
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [_worker(f"w{i}", env, log) for i, log in enumerate(logs, start=1)]
    try:
        for log in logs:
            _wait_ready(log)
        sent = manage("shell", "-c", SEND.format(job=job_id), env=env)
        assert sent.returncode == 0, sent.stderr
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                status, done, rows, partials = conn.execute(
                    "SELECT status, symbols_done, rows_written, partials "
                    "FROM features_materializationjob WHERE id = %s",
                    [job_id],
                ).fetchone()
                if status in ("succeeded", "failed"):
                    break
                time.sleep(0.3)
            events = conn.execute(
                "SELECT count(*) FROM tradingsite_event "
                "WHERE type = 'features.materialized' AND payload->>'view' = 'fanout'"
            ).fetchone()[0]
            stored = conn.execute(
                "SELECT count(*) FROM features_featurerow r JOIN features_featureview v "
                "ON v.id = r.view_id WHERE v.name = 'fanout'"
            ).fetchone()[0]
    finally:
        for worker in workers:
            stop_process(worker)
    assert (status, done) == ("succeeded", len(SYMBOLS)), [log.read_text()[-1500:] for log in logs]
    assert rows == stored == len(SYMBOLS) * N_BARS
    assert {p["worker"].split("@")[0] for p in partials.values()} == {"w1", "w2"}
    assert events == 1
