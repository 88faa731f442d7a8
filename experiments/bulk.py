"""The tracker's hot write path in SQL: metric points by COPY (PostgreSQL) or executemany
(SQLite), and the latest-metric upsert in one statement, so a batch of 1,000 points costs two
round trips. Also SQL LIKE / ILIKE for search (Django's lookups escape the wildcards).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Lookup

from experiments.models import LatestMetric, Metric

# (run pk, key, stored value, is_nan, step, timestamp ms)
MetricRow = tuple[int, str, float, bool, int, int]
UPSERT_CHUNK_ROWS = 1000
COPY_MIN_ROWS = 50
_COLUMNS = ("run_id", "key", "value", "is_nan", "step", "timestamp")


def _names() -> tuple[str, str, str]:
    quote = connection.ops.quote_name
    return (
        quote(Metric._meta.db_table),
        quote(LatestMetric._meta.db_table),
        ", ".join(quote(c) for c in _COLUMNS),
    )


def metric_rows_insert(rows: Sequence[MetricRow]) -> None:
    """Append `rows` to the metric history. Call inside the caller's transaction."""
    if not rows:
        return
    history, _, columns = _names()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) >= COPY_MIN_ROWS:
            copy_sql = f"COPY {history} ({columns}) FROM STDIN (FORMAT BINARY)"
            with cursor.cursor.copy(copy_sql) as copy:
                copy.set_types(["int8", "varchar", "float8", "bool", "int8", "int8"])
                for row in rows:
                    copy.write_row(row)
        elif connection.vendor == "postgresql":  # a few rows: one INSERT beats COPY's set-up
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
            cursor.execute(
                f"INSERT INTO {history} ({columns}) VALUES {values}",
                [field for row in rows for field in row],
            )
        else:
            placeholders = ", ".join(["%s"] * len(_COLUMNS))
            cursor.executemany(
                f"INSERT INTO {history} ({columns}) VALUES ({placeholders})", list(rows)
            )


def metrics_single_statement(count: int) -> bool:
    """Whether `count` points are written by one statement (atomic without a transaction)."""
    return connection.vendor == "postgresql" and 0 < count < COPY_MIN_ROWS


def metrics_write(rows: Sequence[MetricRow], latest: Sequence[MetricRow]) -> None:
    """Append `rows` to the history and upsert `latest` (one row per key). A few points on
    PostgreSQL: one statement (a data-modifying CTE), one round trip instead of four (BEGIN,
    two INSERTs, COMMIT); otherwise two statements, in the caller's transaction."""
    if not metrics_single_statement(len(rows)):
        metric_rows_insert(rows)
        latest_metrics_upsert(latest)
        return
    history, table, columns = _names()
    row_sql = "(%s, %s, %s, %s, %s, %s)"
    ordered = sorted(latest, key=lambda r: (r[0], r[1]))
    sql = (
        f"WITH history AS (INSERT INTO {history} ({columns}) VALUES "
        f"{', '.join([row_sql] * len(rows))}) "
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_sql] * len(ordered))} "
        f"{_latest_upsert_clause(table)}"
    )
    params = [field for row in rows for field in row] + [f for row in ordered for f in row]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _latest_upsert_clause(latest: str) -> str:
    quote = connection.ops.quote_name
    value, step, timestamp, is_nan = (quote(c) for c in ("value", "step", "timestamp", "is_nan"))
    return (
        f"ON CONFLICT ({quote('run_id')}, {quote('key')}) DO UPDATE SET "
        f"{value} = excluded.{value}, {is_nan} = excluded.{is_nan}, "
        f"{step} = excluded.{step}, {timestamp} = excluded.{timestamp} "
        f"WHERE (excluded.{step}, excluded.{timestamp}, excluded.{value}) > "
        f"({latest}.{step}, {latest}.{timestamp}, {latest}.{value})"
    )


def latest_metrics_upsert(rows: Sequence[MetricRow]) -> None:
    """Make each row the latest of its (run, key) unless a later one is there: later means a
    higher (step, timestamp, value), MLflow's rule. One row per (run, key) in `rows`."""
    if not rows:
        return
    _, latest, columns = _names()
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))  # one lock order: no deadlocks
    upsert = _latest_upsert_clause(latest)
    with connection.cursor() as cursor:
        # Chunks keep each statement under SQLite's bound-parameter limit (32,766).
        for start in range(0, len(ordered), UPSERT_CHUNK_ROWS):
            chunk = ordered[start : start + UPSERT_CHUNK_ROWS]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {latest} ({columns}) VALUES {values} {upsert}",
                [field for row in chunk for field in row],
            )


def like_to_glob(pattern: str) -> str:
    """SQL LIKE pattern -> SQLite GLOB pattern (GLOB is case-sensitive, as LIKE is elsewhere)."""
    out = []
    for char in pattern:
        if char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        elif char in "*?[":
            out.append(f"[{char}]")
        else:
            out.append(char)
    return "".join(out)


class Like(Lookup):
    """Case-sensitive SQL LIKE with the caller's wildcards (MLflow's LIKE)."""

    lookup_name = "sql_like"

    def as_sql(self, compiler, connection):  # noqa: ANN001, ANN201
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} LIKE {rhs}", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler, connection):  # noqa: ANN001, ANN201
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} GLOB {rhs}", [*lhs_params, *[like_to_glob(p) for p in rhs_params]]


class ILike(Lookup):
    """Case-insensitive SQL LIKE (MLflow's ILIKE)."""

    lookup_name = "sql_ilike"

    def as_sql(self, compiler, connection):  # noqa: ANN001, ANN201
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ILIKE {rhs}", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler, connection):  # noqa: ANN001, ANN201
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} LIKE {rhs}", [*lhs_params, *rhs_params]
