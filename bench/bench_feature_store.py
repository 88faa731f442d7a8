"""Feature store on the production-like profile (PostgreSQL + Redis): write, point-in-time, online.

Issue 4, `make bench` parts (b), (c), (d), each against a baseline measured in the same run on
the same data:

(b) offline write: 100 symbols x 10,000 demo bars -> `compute_features` -> 1,000,000 feature rows
    written with `features.store._offline_write` (one call per symbol: binary COPY into a
    staging table, then an upsert) vs a raw psycopg text `COPY` of the same rows into a temp
    table with the same columns (values double precision[]), timed with and without encoding
    the rows (plus, for information, a COPY into a temp table carrying the unique key index).
    When the first 200,000 rows project to more than WRITE_BUDGET_SECONDS for
    the million, the run stops there and says so.
(c) point-in-time: `training_set_build` for 100,000 random (symbol, ts) entity rows over the
    written range vs `pandas.merge_asof` on the same feature frame already in memory.
(d) online lookup over HTTP, served as in production: ENVIRONMENT=production (PostgreSQL pool,
    Redis), gunicorn with one uvicorn worker, JWT; the client is a keep-alive http.client
    connection sending X-Forwarded-Proto: https as the TLS proxy would. GET
    /api/v1/feature-views/<view>/online for 1 and for 50 symbols, p50/p99 ms, vs a bare Redis
    GET (redis-py) of one online-store key; for information, `online_features()` called
    in-process (the store's own share of a request).

The parent checks the servers, creates and migrates the bench database and the API user, then
runs `--child` with the bench environment (Django needs DATABASE_URL/REDIS_URL before setup).
The bench database is kept between runs; the bench view's rows are deleted at the start.

    .venv/bin/python bench/bench_feature_store.py
"""

from __future__ import annotations

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

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tradingsite_bench"
REDIS_URL = "redis://127.0.0.1:6379/0"
VIEW_NAME = "bench_view"
USERNAME = "bench_fs"
PASSWORD = "bench-Feature-store-1"
SYMBOLS, BARS = 100, 10_000
REDUCED_SYMBOLS = 20  # 200,000 rows when the full million would take too long
WRITE_BUDGET_SECONDS = 180.0
ENTITY_ROWS = 100_000
ONLINE_SYMBOLS = 50
HTTP_REQUESTS = 2_000
REDIS_GETS = 2_000
TARGET_P99_MS = {1: 8.0, 50: 15.0}
COPY_TABLE = "bench_feature_copy"


# --- parent -----------------------------------------------------------------------------------


def bench_env(var: Path) -> dict[str, str]:
    drop = ("ENVIRONMENT", "DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "JWT_SECRET")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        TRADINGSITE_VAR_DIR=str(var),
        LOG_LEVEL="WARNING",
        RATE_LIMIT_API="100000/60",
        BENCH_PASSWORD=PASSWORD,
        # ENVIRONMENT unset (development: no HTTPS redirect); DEBUG off as in production, so
        # Django keeps no per-query log (it would hold every 2,000-row INSERT in memory).
        DEBUG="false",
    )
    return env


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = bench_env(Path(tmp))
        problem = subprocess.run(
            [sys.executable, "scripts/services_reachable.py"], cwd=ROOT, env=env,
            capture_output=True, text=True,
        )  # fmt: skip
        if problem.returncode:
            reason = " / ".join(problem.stderr.strip().splitlines()) or "services unreachable"
            print(f"feature store bench skipped: {reason}")
            return 0
        from tests.support import postgres_database

        postgres_database(DATABASE_URL)
        for args in (
            ["migrate", "--noinput"],
            ["create_api_user", USERNAME, "--password-env", "BENCH_PASSWORD"],
        ):
            done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True)  # fmt: skip
            if done.returncode:
                print(f"manage.py {args[0]} failed:\n{done.stderr}", file=sys.stderr)
                return 1
        return subprocess.run([sys.executable, __file__, "--child"], cwd=ROOT, env=env).returncode


# --- child: measurements ----------------------------------------------------------------------


def percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    import numpy as np

    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def make_features():
    """core_technical for SYMBOLS x BARS deterministic demo bars (warm-up rows included)."""
    from features.demo import demo_bars
    from features.transforms import compute_features

    symbols = tuple(f"B{i:03d}" for i in range(SYMBOLS))
    return compute_features(demo_bars(symbols=symbols, n_bars=BARS, seed=11))


def reset_view(view) -> None:
    """Delete the view's rows (all versions) and vacuum, so every run writes into the same state."""
    import psycopg

    from features.models import FeatureRow

    FeatureRow.objects.filter(view__name=view.name).delete()
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {FeatureRow._meta.db_table}")


def write_ours(view, features, names) -> tuple[int, float, bool]:
    """_offline_write per symbol; stops at REDUCED_SYMBOLS when the million would be too slow."""
    from features.store import _offline_write

    groups = list(features.groupby("symbol", sort=True))
    rows, started = 0, time.perf_counter()
    for i, (symbol, frame) in enumerate(groups, start=1):
        rows += _offline_write(view, symbol, frame, names)
        if i == REDUCED_SYMBOLS:
            elapsed = time.perf_counter() - started
            projected = elapsed * len(groups) / i
            progress(f"{rows:,} rows in {elapsed:.1f} s; 1,000,000 projected {projected:.0f} s")
            if projected > WRITE_BUDGET_SECONDS:
                return rows, elapsed, True
    return rows, time.perf_counter() - started, False


def encode_copy_text(view, features, names, symbols) -> tuple[list[bytes], float]:
    """COPY text per symbol: the values as a float8 array literal, NaN where not finite."""
    import numpy as np

    started = time.perf_counter()
    chunks = []
    for symbol, frame in features[features["symbol"].isin(symbols)].groupby("symbol"):
        matrix = frame[names].to_numpy(dtype=float)
        matrix[~np.isfinite(matrix)] = np.nan
        prefix = f"{view.pk}\t{symbol}\t"
        chunks.append(
            "".join(
                f"{prefix}{ts.isoformat()}\t{{{','.join(map(repr, values))}}}\n"
                for ts, values in zip(frame["ts"].dt.to_pydatetime(), matrix.tolist(), strict=True)
            ).encode()
        )  # numbers and nan hold no tab, newline or backslash: no COPY escaping
    return chunks, time.perf_counter() - started


def copy_rows(chunks: list[bytes], *, indexed: bool) -> float:
    """COPY the encoded rows into a temp table (view_id, symbol, ts, values jsonb), a commit per
    symbol as `_offline_write` does; the table is dropped afterwards."""
    import psycopg

    with psycopg.connect(DATABASE_URL) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
        conn.execute(
            f"CREATE TEMP TABLE {COPY_TABLE} (view_id bigint NOT NULL, "
            "symbol varchar(32) NOT NULL, ts timestamptz NOT NULL, "
            "values double precision[] NOT NULL)"
        )
        if indexed:
            conn.execute(f"CREATE UNIQUE INDEX ON {COPY_TABLE} (view_id, symbol, ts)")
        conn.commit()
        started = time.perf_counter()
        for chunk in chunks:
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY {COPY_TABLE} (view_id, symbol, ts, values) FROM STDIN") as copy,
            ):
                copy.write(chunk)
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute(f"DROP TABLE {COPY_TABLE}")
        conn.commit()
    return elapsed


def entity_rows(features, symbols):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    ts = features["ts"]
    lo, hi = ts.min().value, ts.max().value
    return pd.DataFrame(
        {
            "symbol": rng.choice(np.asarray(symbols), ENTITY_ROWS),
            "ts": pd.to_datetime(rng.integers(lo, hi, ENTITY_ROWS), utc=True),
        }
    )


def merge_asof_baseline(view, features, entities, names):
    """The pure join: merge_asof on the in-memory feature frame, same rules as the store."""
    import numpy as np
    import pandas as pd

    from features.store import UTC_NS, point_in_time_join

    right = features[["symbol", "ts", *names]].rename(columns={"ts": "feature_ts"})
    right["feature_ts"] = right["feature_ts"].astype(UTC_NS)
    left = entities.copy()
    left["ts"] = left["ts"].astype(UTC_NS)
    left["_row"] = np.arange(len(left))
    started = time.perf_counter()
    merged = point_in_time_join(left, right, pd.Timedelta(seconds=view.ttl_seconds))
    merged = merged.sort_values("_row").reset_index(drop=True)
    return time.perf_counter() - started, merged


def online_http(port: int, token: str, symbols: list[str]) -> dict[int, list[float]]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"}
    path = f"/api/v1/feature-views/{VIEW_NAME}/online?symbols="
    queries = {
        1: [symbols[i % len(symbols)] for i in range(HTTP_REQUESTS)],
        ONLINE_SYMBOLS: [",".join(symbols[:ONLINE_SYMBOLS])] * HTTP_REQUESTS,
    }

    def get(query: str) -> tuple[int, bytes]:
        conn.request("GET", path + query, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()

    timings: dict[int, list[float]] = {}
    for count, params in queries.items():
        for query in params[:50]:  # warm-up: connections, caches
            status, body = get(query)
            if status != 200:
                raise RuntimeError(f"online lookup: HTTP {status} {body[:300]!r}")
        results = json.loads(body)["results"]
        if len(results) != count or any(r["values"] is None for r in results):
            raise RuntimeError(f"online lookup returned missing values: {results[:2]}")
        seconds = []
        for query in params:
            started = time.perf_counter()
            status, body = get(query)
            seconds.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"online lookup: HTTP {status} {body[:300]!r}")
        timings[count] = seconds
    conn.close()
    return timings


def production_server_env() -> dict[str, str]:
    """The bench environment as a production deployment (pooled PostgreSQL, JSON logs)."""
    env = dict(os.environ)
    env.update(
        ENVIRONMENT="production",
        DEBUG="false",
        SECRET_KEY="bench-" + "k3Y9aZ9x" * 8,
        JWT_SECRET="bench-" + "jWt7Qm7p" * 6,
        ALLOWED_ORIGINS="https://trading.example.com",
        TRUSTED_HOSTS="127.0.0.1,localhost",
    )
    return env


def start_gunicorn(port: int) -> subprocess.Popen:
    """The production api role (docker/entrypoint.sh) with one worker, on 127.0.0.1:`port`."""
    args = [
        "-m", "gunicorn", "tradingsite.asgi:application", "-k", "uvicorn_worker.UvicornWorker",
        "--preload", "-w", "1", "-b", f"127.0.0.1:{port}",
    ]  # fmt: skip
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=production_server_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def access_token(port: int) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"username": USERNAME, "password": PASSWORD})
    headers = {"Content-Type": "application/json", "X-Forwarded-Proto": "https"}
    conn.request("POST", "/api/v1/auth/token/", body=body, headers=headers)
    response = conn.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"login: HTTP {response.status} {answer[:300]!r}")
    return json.loads(answer)["access"]


def redis_baseline(key: str) -> list[float]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    if client.get(key) is None:
        raise RuntimeError(f"redis key {key!r} is missing")
    for _ in range(100):
        client.get(key)
    seconds = []
    for _ in range(REDIS_GETS):
        started = time.perf_counter()
        client.get(key)
        seconds.append(time.perf_counter() - started)
    return seconds


def in_process_online(view, symbols: list[str]) -> dict[int, list[float]]:
    """online_features() without HTTP: what the store costs inside one request."""
    from features.store import online_features

    timings: dict[int, list[float]] = {}
    for count in (1, ONLINE_SYMBOLS):
        seconds = []
        for i in range(HTTP_REQUESTS):
            chosen = [symbols[i % len(symbols)]] if count == 1 else symbols[:count]
            started = time.perf_counter()
            online_features(view=view, symbols=chosen)
            seconds.append(time.perf_counter() - started)
        timings[count] = seconds
    return timings


def child() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    django.setup()
    from django.core.cache import cache
    from django.db import connection

    from features.store import (
        _online_key,
        _online_write,
        feature_view_register,
        training_set_build,
    )
    from features.transforms import CORE_TECHNICAL
    from tests.support import free_port, stop_process, wait_for_port

    total_started = time.perf_counter()
    view, _ = feature_view_register(
        name=VIEW_NAME, feature_names=CORE_TECHNICAL, timeframe="1d",
        description="bench/bench_feature_store.py",
    )  # fmt: skip
    names = list(view.feature_names)
    progress(f"view {view} ({len(names)} features); deleting its rows")
    reset_view(view)
    features = make_features()
    lines: list[str] = []

    # (b) offline write
    progress("(b) writing through _offline_write")
    rows, ours_s, reduced = write_ours(view, features, names)
    written = sorted(features["symbol"].unique())[: rows // BARS]
    progress("(b) COPY baselines")
    chunks, encode_s = encode_copy_text(view, features, names, written)
    copy_s = copy_rows(chunks, indexed=False)
    copy_idx_s = copy_rows(chunks, indexed=True)
    del chunks
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {view.rows.model._meta.db_table}")
    note = f" (REDUCED: 1,000,000 projected > {WRITE_BUDGET_SECONDS:.0f} s)" if reduced else ""

    def rate_line(label: str, seconds: float, *, ratio: bool = False) -> str:
        versus = f"   ours/this rate = {seconds / ours_s:.2f}x" if ratio else ""
        return f"    {label:<44} {seconds:7.1f} s  {rows / seconds:>10,.0f} rows/s{versus}"

    lines += [
        f"(b) offline store write: {rows:,} rows = {len(written)} symbols x {BARS:,} bars, "
        f"{len(names)} features, one transaction per symbol{note}",
        rate_line("_offline_write (binary COPY, stage, upsert)", ours_s),
        rate_line("baseline: encode + COPY -> temp table", encode_s + copy_s, ratio=True),
        rate_line("  of which COPY only (pre-encoded text)", copy_s, ratio=True),
        rate_line("  of which encoding (array literal per row)", encode_s),
        rate_line("info: COPY only -> temp + unique index", copy_idx_s, ratio=True),
    ]

    # (c) point-in-time retrieval
    progress("(c) training_set_build")
    in_range = features[features["symbol"].isin(written)]
    entities = entity_rows(in_range, written)
    started = time.perf_counter()
    built = training_set_build(view=view, entities=entities)
    pit_s = time.perf_counter() - started
    join_s, merged = merge_asof_baseline(view, in_range, entities, names)
    same = bool((built["feature_ts"].fillna(0) == merged["feature_ts"].fillna(0)).all())
    matched = int(built["feature_ts"].notna().sum())
    lines += [
        f"(c) point-in-time retrieval: {ENTITY_ROWS:,} entity rows over {len(written)} symbols, "
        f"{matched:,} matched within ttl, same feature_ts as the baseline: {same}",
        f"    {'training_set_build':<44} {pit_s:7.2f} s  {ENTITY_ROWS / pit_s:>10,.0f} rows/s"
        "   target: seconds, not minutes",
        f"    {'baseline: merge_asof, frame in memory':<44} {join_s:7.2f} s  "
        f"{ENTITY_ROWS / join_s:>10,.0f} rows/s   ours/baseline time = {pit_s / join_s:.0f}x",
    ]

    # (d) online lookup
    progress("(d) online store + gunicorn/uvicorn, production profile")
    symbols = sorted(features["symbol"].unique())[:ONLINE_SYMBOLS]
    last_rows = features.groupby("symbol").tail(1).set_index("symbol")
    for symbol in symbols:
        _online_write(view, symbol, last_rows.loc[symbol], names)
    redis_key = cache.make_key(_online_key(view, symbols[0]))
    direct = in_process_online(view, symbols)
    connection.close()
    port = free_port()
    server = start_gunicorn(port)
    try:
        wait_for_port(port, server)
        http = online_http(port, access_token(port), symbols)
    finally:
        stop_process(server)
    redis_p50, redis_p99 = percentiles_ms(redis_baseline(redis_key))

    def latency(label: str, p50: float, p99: float, extra: str = "") -> str:
        return f"    {label:<44} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms{extra}"

    lines += [
        f"(d) online lookup over HTTP: production profile, gunicorn + 1 uvicorn worker, JWT, "
        f"keep-alive http.client, {HTTP_REQUESTS:,} sequential GETs per row",
        latency(f"baseline: bare Redis GET, redis-py, {REDIS_GETS:,}x", redis_p50, redis_p99),
    ]
    for count in (1, ONLINE_SYMBOLS):
        p50, p99 = percentiles_ms(http[count])
        direct_ms = percentiles_ms(direct[count])
        target = TARGET_P99_MS[count]
        verdict = "OK" if p99 <= target else "MISSED"
        label = f"GET /online?symbols= {count} symbol" + ("s" if count > 1 else "")
        ratios = (
            f"   vs Redis: p50 {p50 / redis_p50:.0f}x, p99 {p99 / redis_p99:.0f}x"
            f"   target p99 <= {target:.0f} ms: {verdict}"
        )
        lines += [
            latency(label, p50, p99, ratios),
            latency(f"  info: online_features() in-process, {count}", *direct_ms),
        ]

    print(
        f"feature store bench: PostgreSQL {urlsplit(DATABASE_URL).path.lstrip('/')}, "
        f"Redis {urlsplit(REDIS_URL).netloc}{urlsplit(REDIS_URL).path}, view {view}, "
        "writes and reads in-process with ENVIRONMENT unset, DEBUG off"
    )
    print("\n".join(lines))
    print(f"total {time.perf_counter() - total_started:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child()
    else:
        sys.exit(main())
