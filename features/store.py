"""Feature views, materialization, the offline and online stores, point-in-time training sets.

Load -> compute -> save: bars come from the Bar table, `features.transforms` computes, and the
rows go to the offline store (FeatureRow, one row per view version x symbol x bar) and the
newest row per symbol to the online store (the cache: Redis in production).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone
from redis.exceptions import RedisError

from features.models import Bar, FeatureDefinition, FeatureRow, FeatureView, MaterializationJob
from features.quality import (
    FeatureCounts,
    feature_counts,
    freshness_score,
    quality_from_counts,
    view_quality,
)
from features.transforms import CORE_TECHNICAL, FEATURE_SPECS, compute_features, max_warmup_bars
from tradingsite.events import event_publish
from tradingsite.security.breakers import CircuitOpenError, get_breaker

logger = logging.getLogger(__name__)
ROW_BATCH_SIZE = 2_000
TIMEFRAME_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}
DEFAULT_TTL_TIMEFRAMES = 3  # a value older than three bars is stale
UTC_NS = "datetime64[ns, UTC]"  # one resolution for both sides of the as-of join


class FeatureStoreError(ValueError):
    """A request the feature store cannot honour; the message says why (API: 400)."""


def timeframe_seconds(timeframe: str) -> int:
    return int(timeframe[:-1]) * TIMEFRAME_UNITS[timeframe[-1]]


def feature_definitions_sync() -> None:
    """Make the FeatureDefinition table say what `features.transforms` computes."""
    for spec in FEATURE_SPECS.values():
        FeatureDefinition.objects.update_or_create(
            name=spec.name,
            defaults={
                "description": spec.description,
                "dtype": spec.dtype,
                "params": dict(spec.params),
                "warmup_bars": spec.warmup_bars,
                "valid_min": spec.valid_min,
                "valid_max": spec.valid_max,
            },
        )


def definition_hash(*, feature_names: Sequence[str], timeframe: str, ttl_seconds: int) -> str:
    spec = {
        "features": [[n, FEATURE_SPECS[n].params] for n in feature_names],
        "timeframe": timeframe,
        "ttl_seconds": ttl_seconds,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


@transaction.atomic
def feature_view_register(
    *,
    name: str,
    feature_names: Sequence[str] = CORE_TECHNICAL,
    timeframe: str = "1d",
    ttl_seconds: int | None = None,
    description: str = "",
) -> tuple[FeatureView, bool]:
    """The view version for this definition: the latest if unchanged, else a new version."""
    unknown = [n for n in feature_names if n not in FEATURE_SPECS]
    if unknown or not feature_names:
        raise FeatureStoreError(f"unknown or no features: {unknown or '[]'}")
    ttl = ttl_seconds or DEFAULT_TTL_TIMEFRAMES * timeframe_seconds(timeframe)
    digest = definition_hash(feature_names=feature_names, timeframe=timeframe, ttl_seconds=ttl)
    latest = FeatureView.objects.select_for_update().filter(name=name).order_by("-version").first()
    if latest is not None and latest.definition_hash == digest:
        return latest, False
    feature_definitions_sync()
    view = FeatureView.objects.create(
        name=name,
        version=(latest.version + 1) if latest else 1,
        description=description or (latest.description if latest else ""),
        timeframe=timeframe,
        ttl_seconds=ttl,
        feature_names=list(feature_names),
        definition_hash=digest,
    )
    view.features.set(FeatureDefinition.objects.filter(name__in=feature_names))
    transaction.on_commit(feature_view_cache_clear)
    event_publish(
        type="features.view.registered",
        subject=f"view:{name}",
        payload={"view": name, "version": view.version, "features": list(feature_names)},
    )
    return view, True


# The serving path resolves a view per request; a version's definition never changes, so each
# process keeps the resolved row for a moment. A new version is seen at once in the process that
# registered it and within VIEW_CACHE_SECONDS elsewhere.
VIEW_CACHE_SECONDS = 2.0
_resolved_views: dict[tuple[str, int | None], tuple[float, FeatureView]] = {}


def feature_view_get(name: str, version: int | None = None) -> FeatureView:
    """The view `name` at `version` (None: the latest); FeatureView.DoesNotExist names both."""
    views = FeatureView.objects.filter(name=name)
    found = (views.filter(version=version) if version is not None else views).order_by("-version")
    view = found.first()
    if view is None:
        raise FeatureView.DoesNotExist(
            f"no feature view {name!r}" + (f" version {version}" if version is not None else "")
        )
    return view


def feature_view_resolve(name: str, version: int | None = None) -> FeatureView:
    """`feature_view_get`, briefly cached in this process.

    For reads that need only the definition (online lookup): the cached row's watermark may
    be a moment old."""
    key = (name, version)
    hit = _resolved_views.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < VIEW_CACHE_SECONDS:
        return hit[1]
    found = feature_view_get(name, version)
    _resolved_views[key] = (now, found)
    return found


def feature_view_cache_clear() -> None:
    _resolved_views.clear()


def feature_view_latest(name: str) -> FeatureView:
    return feature_view_get(name)


def feature_view_ensure_default() -> FeatureView:
    """Seed §3 step 5: register DEFAULT_FEATURE_VIEW if absent, materialize it if never done."""
    view, _ = feature_view_register(
        name=settings.DEFAULT_FEATURE_VIEW,
        description="Core technical indicators of OHLCV bars (returns, trend, momentum, "
        "volatility, volume).",
    )
    if view.watermark is None and Bar.objects.filter(timeframe=view.timeframe).exists():
        feature_view_materialize(view=view, mode=MaterializationJob.Mode.FULL)
    return view


# --- materialization ------------------------------------------------------------------------


def materialization_job_create(
    *, view: FeatureView, mode: str, symbols: Sequence[str] | None = None
) -> MaterializationJob:
    all_symbols = sorted(
        Bar.objects.filter(timeframe=view.timeframe).values_list("symbol", flat=True).distinct()
    )
    chosen = list(symbols) if symbols else all_symbols
    missing = sorted(set(chosen) - set(all_symbols))
    if missing:
        raise FeatureStoreError(f"no {view.timeframe} bars for symbols {missing}")
    return MaterializationJob.objects.create(view=view, mode=mode, symbols=chosen)


def feature_view_materialize(
    *,
    view: FeatureView,
    mode: str = MaterializationJob.Mode.INCREMENTAL,
    symbols: Sequence[str] | None = None,
    job: MaterializationJob | None = None,
) -> MaterializationJob:
    """Compute and store the view's features for `symbols` (all with bars) in this process,
    one symbol after the other, recording a job. The Celery task fans out per symbol instead
    (`features.tasks`); both record each symbol with `materialize_symbol`."""
    job = job or materialization_job_create(view=view, mode=mode, symbols=symbols)
    materialization_job_start(job)
    try:
        for symbol in job.symbols:
            materialize_symbol(job=job, view=view, symbol=symbol)
    except Exception as exc:
        materialization_job_fail(job, exc)
        raise
    return materialization_finish(view=view, job=job)


def materialization_job_start(job: MaterializationJob) -> None:
    MaterializationJob.objects.filter(pk=job.pk, status=MaterializationJob.Status.PENDING).update(
        status=MaterializationJob.Status.RUNNING, started_at=timezone.now()
    )


def materialization_job_fail(job: MaterializationJob, exc: BaseException, symbol: str = "") -> None:
    where = f"{symbol}: " if symbol else ""
    with transaction.atomic():
        MaterializationJob.objects.filter(pk=job.pk).update(
            status=MaterializationJob.Status.FAILED,
            error=f"{where}{exc!r}"[:2000],
            finished_at=timezone.now(),
        )
        event_publish(
            type="features.materialization.failed",
            subject=f"view:{job.view.name}",
            payload={"view": job.view.name, "version": job.view.version, "job_id": job.pk,
                     "symbol": symbol, "error": f"{where}{exc!r}"[:500]},
        )  # fmt: skip


def materialize_symbol(
    *, job: MaterializationJob, view: FeatureView, symbol: str, worker: str = ""
) -> bool:
    """Compute, write and record one symbol of `job` (`worker`: the Celery worker doing it).
    Returns True for the call that recorded the job's last symbol: exactly one caller, even
    when symbols run in parallel tasks."""
    frame, written = _materialize_symbol(
        view, symbol, full=job.mode == MaterializationJob.Mode.FULL
    )
    names = view.feature_names
    partial = {
        "worker": worker,
        "rows_written": written,
        "newest": frame["ts"].max().isoformat() if len(frame) else None,
        "features": {
            name: feature_counts(
                frame[name].to_numpy(dtype=float) if len(frame) else np.array([]),
                valid_min=FEATURE_SPECS[name].valid_min,
                valid_max=FEATURE_SPECS[name].valid_max,
            ).as_dict()
            for name in names
        },
    }
    with transaction.atomic():
        # The row lock serializes the symbols' bookkeeping; a retried symbol counts once.
        locked = MaterializationJob.objects.select_for_update().get(pk=job.pk)
        if symbol in locked.partials:
            return False
        locked.partials[symbol] = partial
        locked.symbols_done += 1
        locked.rows_written += written
        locked.save(update_fields=["partials", "symbols_done", "rows_written"])
        # Live progress for the dashboards, committed with the bookkeeping it describes.
        event_publish(
            type="features.materialization.progress",
            subject=f"view:{view.name}",
            payload={
                "view": view.name,
                "version": view.version,
                "job_id": job.pk,
                "symbol": symbol,
                "symbols_done": locked.symbols_done,
                "symbols": len(locked.symbols),
                "rows_written": locked.rows_written,
            },
        )
        return locked.symbols_done == len(locked.symbols)


def _materialize_symbol(view: FeatureView, symbol: str, *, full: bool) -> tuple[pd.DataFrame, int]:
    """Returns the rows to judge quality on and the number of rows written.

    Quality rows: every computed row past the warm-up (full), or the recomputed recent window
    past its warm-up, new rows included (incremental: never empty while the symbol has bars)."""
    names = view.feature_names
    since = None if full else view.rows.filter(symbol=symbol).aggregate(last=Max("ts"))["last"]
    bars = Bar.objects.filter(symbol=symbol, timeframe=view.timeframe)
    if since is not None:
        lookback = max_warmup_bars(names)
        older = bars.filter(ts__lte=since).order_by("-ts").values_list("ts", flat=True)
        start = older[lookback] if older.count() > lookback else None
        if start is not None:
            bars = bars.filter(ts__gte=start)
    frame = pd.DataFrame.from_records(
        bars.order_by("ts").values("ts", "open", "high", "low", "close", "volume")
    )
    if frame.empty:
        return pd.DataFrame(columns=["ts", *names]), 0
    frame.insert(0, "symbol", symbol)
    computed = compute_features(frame, names)
    new = computed if since is None else computed[computed["ts"] > since]
    written = _offline_write(view, symbol, new, names, replace=since is None)
    if len(computed):
        _online_write(view, symbol, computed.iloc[-1], names)
    warm = max((FEATURE_SPECS[n].warmup_bars for n in names), default=0)
    return computed[computed.index >= computed.index[0] + warm], written


def _offline_write(
    view: FeatureView, symbol: str, frame: pd.DataFrame, names: list[str], *, replace: bool = False
) -> int:
    """Store `frame`'s rows for `symbol`: an upsert on (view, symbol, ts), or with `replace`
    (a full materialization) instead of every stored row of the symbol. Returns the count."""
    if frame.empty and not replace:
        return 0
    matrix = frame[names].to_numpy(dtype=float)
    matrix[~np.isfinite(matrix)] = np.nan
    stamps = frame["ts"].dt.to_pydatetime()
    if connection.vendor == "postgresql":
        return _offline_write_postgres(view, symbol, stamps, matrix, replace=replace)
    rows = [
        FeatureRow(view=view, symbol=symbol, ts=ts, values=values)
        for ts, values in zip(stamps, matrix.tolist(), strict=True)
    ]
    with transaction.atomic():
        if replace:
            FeatureRow.objects.filter(view=view, symbol=symbol).delete()
        FeatureRow.objects.bulk_create(
            rows,
            batch_size=ROW_BATCH_SIZE,
            update_conflicts=True,
            unique_fields=["view", "symbol", "ts"],
            update_fields=["values"],
        )
    return len(rows)


# A full materialization replaces the symbol's rows: delete them and COPY the new ones straight
# into the table, in one transaction (readers see the old rows until it commits). Incremental
# rows go by binary COPY into a per-connection staging table, then one set-based upsert. Either
# way the rows travel through psycopg's C encoders, not one INSERT parameter at a time.
_COPY_COLUMNS = '(view_id, symbol, ts, "values")'
_STAGE_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS feature_row_stage "
    '(ts timestamptz NOT NULL, "values" double precision[] NOT NULL) ON COMMIT DELETE ROWS'
)
_UPSERT_SQL = """
INSERT INTO {table} (view_id, symbol, ts, "values")
SELECT %s, %s, ts, "values" FROM feature_row_stage
ON CONFLICT (view_id, symbol, ts) DO UPDATE SET "values" = EXCLUDED."values"
"""


def _offline_write_postgres(
    view: FeatureView, symbol: str, stamps: np.ndarray, matrix: np.ndarray, *, replace: bool
) -> int:
    table = connection.ops.quote_name(FeatureRow._meta.db_table)
    rows = zip(stamps, matrix.tolist(), strict=True)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY is not part of the DB-API
        if replace:
            cursor.execute(
                f"DELETE FROM {table} WHERE view_id = %s AND symbol = %s", [view.pk, symbol]
            )
            with raw.copy(f"COPY {table} {_COPY_COLUMNS} FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["bigint", "varchar", "timestamptz", "float8[]"])
                for ts, values in rows:
                    copy.write_row((view.pk, symbol, ts, values))
            return len(stamps)
        cursor.execute(_STAGE_SQL)
        cursor.execute("TRUNCATE feature_row_stage")  # an enclosing transaction may hold rows
        with raw.copy('COPY feature_row_stage (ts, "values") FROM STDIN (FORMAT BINARY)') as copy:
            copy.set_types(["timestamptz", "float8[]"])
            for ts, values in rows:
                copy.write_row((ts, values))
        cursor.execute(_UPSERT_SQL.format(table=table), [view.pk, symbol])
        return cursor.rowcount


def _json_values(values: Iterable[float]) -> list[float | None]:
    """Values for JSON consumers (the online store, the API): None where not finite."""
    return [float(v) if math.isfinite(v) else None for v in values]


def materialization_finish(*, view: FeatureView, job: MaterializationJob) -> MaterializationJob:
    """Quality from the symbols' counts, the watermark, the job's status, and the events."""
    from features.metrics import record_view_quality

    job.refresh_from_db()
    if job.status == MaterializationJob.Status.FAILED:
        return job
    partials = list(job.partials.values())
    stamps = [datetime.fromisoformat(p["newest"]) for p in partials if p["newest"]]
    newest = max(stamps) if stamps else None
    age = (timezone.now() - newest).total_seconds() if newest is not None else math.inf
    fresh = freshness_score(age_seconds=age, timeframe_seconds=timeframe_seconds(view.timeframe))
    qualities = [
        quality_from_counts(
            name,
            [FeatureCounts(**p["features"][name]) for p in partials if name in p["features"]],
            freshness=fresh,
        )
        for name in view.feature_names
    ]
    quality = view_quality(qualities)
    with transaction.atomic():
        if newest is not None and (view.watermark is None or newest > view.watermark):
            FeatureView.objects.filter(pk=view.pk).update(watermark=newest)
        MaterializationJob.objects.filter(pk=job.pk).update(
            status=MaterializationJob.Status.SUCCEEDED, quality=quality, finished_at=timezone.now()
        )
        job.refresh_from_db()
        payload = {
            "view": view.name,
            "version": view.version,
            "job_id": job.pk,
            "mode": job.mode,
            "symbols": len(job.symbols),
            "rows_written": job.rows_written,
            "quality_score": quality["score"],
        }
        event_publish(type="features.materialized", subject=f"view:{view.name}", payload=payload)
        if quality["score"] < settings.FEATURE_QUALITY_MIN:
            event_publish(type="features.quality_low", subject=f"view:{view.name}", payload=payload)
    record_view_quality(view=view, quality=quality, newest=newest)
    return job


# --- online store ---------------------------------------------------------------------------


def _online_key(view: FeatureView, symbol: str) -> str:
    return f"online:{view.pk}:{symbol}"


def _online_write(view: FeatureView, symbol: str, row: pd.Series, names: list[str]) -> None:
    values = dict(zip(names, _json_values(row[names].to_numpy(dtype=float)), strict=True))
    cache.set(_online_key(view, symbol), {"ts": row["ts"].isoformat(), "values": values}, None)


def _offline_newest(view: FeatureView, symbols: Sequence[str]) -> dict[str, dict]:
    """The offline store's newest row per symbol (one query), keyed and shaped as the online
    store's."""
    newest = FeatureRow.objects.filter(view=view, symbol=OuterRef("symbol")).order_by("-ts")
    rows = FeatureRow.objects.filter(
        view=view, symbol__in=list(symbols), ts=Subquery(newest.values("ts")[:1])
    ).values_list("symbol", "ts", "values")
    return {
        _online_key(view, symbol): {
            "ts": ts.isoformat(),
            "values": dict(zip(view.feature_names, _json_values(values), strict=True)),
        }
        for symbol, ts, values in rows
    }


def _online_refill(view: FeatureView, symbols: Sequence[str]) -> dict[str, dict]:
    """Cache misses (another process's in-memory cache, an evicted or flushed Redis) are read
    from the offline store's newest row and written back, so the online store heals itself."""
    refilled = _offline_newest(view, symbols)
    for key, entry in refilled.items():
        cache.set(key, entry, None)
    return refilled


def online_features(*, view: FeatureView, symbols: Sequence[str]) -> list[dict[str, object]]:
    """Latest values per symbol with their bar time; `stale` when older than the view's ttl."""
    found = cache.get_many([_online_key(view, s) for s in symbols])
    missing = [s for s in symbols if _online_key(view, s) not in found]
    if missing:
        found.update(_online_refill(view, missing))
    return _online_rows(view, symbols, found)


def online_features_resilient(
    *, view: FeatureView, symbols: Sequence[str]
) -> list[dict[str, object]]:
    """`online_features` through the cache's circuit breaker. With Redis down or frozen (or its
    breaker open) the offline store's newest rows answer in the same shape: slower, never a 500
    (reliability.md T5), and `/health` shows the open breaker."""
    try:
        return get_breaker("cache").call(lambda: online_features(view=view, symbols=symbols))
    except (CircuitOpenError, RedisError) as exc:
        logger.warning("online store unavailable (%s): serving from the offline store", exc)
    return _online_rows(view, symbols, _offline_newest(view, symbols))


def _online_rows(
    view: FeatureView, symbols: Sequence[str], found: dict[str, dict]
) -> list[dict[str, object]]:
    now = timezone.now()
    result = []
    for symbol in symbols:
        entry = found.get(_online_key(view, symbol))
        if entry is None:
            result.append({"symbol": symbol, "ts": None, "values": None, "stale": True})
            continue
        as_of = datetime.fromisoformat(entry["ts"])
        stale = (now - as_of) > timedelta(seconds=view.ttl_seconds)
        result.append(
            {"symbol": symbol, "ts": entry["ts"], "values": entry["values"], "stale": stale}
        )
    return result


# --- point-in-time training sets ------------------------------------------------------------


def training_set_build(*, view: FeatureView, entities: pd.DataFrame) -> pd.DataFrame:
    """For each entity row (symbol, ts, ...), the newest feature row whose bar closed at or
    before `ts` and no more than the view's ttl earlier; never a later bar (no look-ahead)."""
    if not {"symbol", "ts"} <= set(entities.columns):
        raise FeatureStoreError("entity rows need `symbol` and `ts`")
    entities = entities.copy()
    entities["ts"] = pd.to_datetime(entities["ts"], utc=True).astype(UTC_NS)
    entities["_row"] = np.arange(len(entities))
    ttl = pd.Timedelta(seconds=view.ttl_seconds)
    if connection.vendor == "postgresql":
        return _point_in_time_postgres(view, entities)
    merged = point_in_time_join(entities, _offline_read(view, entities, ttl), ttl)
    return merged.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def point_in_time_join(
    entities: pd.DataFrame, features: pd.DataFrame, ttl: pd.Timedelta
) -> pd.DataFrame:
    """Per entity row the newest feature row of its symbol with feature_ts <= ts <= feature_ts
    + ttl (an exact close time counts). Both frames carry UTC nanosecond timestamps."""
    return pd.merge_asof(
        entities.sort_values("ts"),
        features.sort_values("feature_ts"),
        left_on="ts",
        right_on="feature_ts",
        by="symbol",
        direction="backward",
        allow_exact_matches=True,
        tolerance=ttl,
    )


# One index probe per entity row (the unique (view, symbol, ts) index, newest first): only the
# matching rows leave the database, instead of every row in the entities' time range.
_PIT_SQL = """
SELECT e.ord, f.ts, f."values"
FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS e(ord, symbol, ts)
LEFT JOIN LATERAL (
    SELECT r.ts, r."values" FROM {table} r
    WHERE r.view_id = %s AND r.symbol = e.symbol
      AND r.ts <= e.ts AND r.ts >= e.ts - make_interval(secs => %s)
    ORDER BY r.ts DESC LIMIT 1
) f ON true
ORDER BY e.ord
"""


def _point_in_time_postgres(view: FeatureView, entities: pd.DataFrame) -> pd.DataFrame:
    sql = _PIT_SQL.format(table=connection.ops.quote_name(FeatureRow._meta.db_table))
    params = [
        entities["_row"].tolist(),
        entities["symbol"].astype(str).tolist(),
        entities["ts"].dt.to_pydatetime().tolist(),
        view.pk,
        view.ttl_seconds,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    names = view.feature_names
    missing = [math.nan] * len(names)
    matrix = [vals if vals is not None else missing for _, _, vals in rows]
    features = pd.DataFrame(matrix, columns=names, dtype=float)
    feature_ts = pd.to_datetime([ts for _, ts, _ in rows], utc=True).astype(UTC_NS)
    result = entities.sort_values("_row").reset_index(drop=True).drop(columns="_row")
    result["feature_ts"] = feature_ts
    return pd.concat([result, features], axis=1)


def _offline_read(view: FeatureView, entities: pd.DataFrame, ttl: pd.Timedelta) -> pd.DataFrame:
    names = view.feature_names
    frames = []
    for symbol, group in entities.groupby("symbol"):
        rows = view.rows.filter(
            symbol=symbol, ts__gte=group["ts"].min() - ttl, ts__lte=group["ts"].max()
        ).values_list("ts", "values")
        ts, values = zip(*rows, strict=True) if rows else ((), ())
        frame = pd.DataFrame(list(values), columns=names, dtype=float)
        frame.insert(0, "feature_ts", pd.to_datetime(list(ts), utc=True).astype(UTC_NS))
        frame.insert(0, "symbol", symbol)
        frames.append(frame)
    empty = pd.DataFrame({"symbol": [], "feature_ts": pd.to_datetime([], utc=True).astype(UTC_NS)})
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else empty.assign(**dict.fromkeys(names, 0.0))
    )
