"""Market-data writes: bar ingest. (Feature materialization lives in its own module.)"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from django.db import transaction

from features.constants import BAR_UPSERT_BATCH_SIZE
from features.market import BarValidationError, is_timeframe, validate_bars
from features.models import Bar
from tradingsite.events import event_publish

BAR_VALUE_FIELDS = ["open", "high", "low", "close", "volume"]
BAR_KEY_FIELDS = ["symbol", "timeframe", "ts"]


@dataclass(frozen=True)
class BarUpsertResult:
    created: int
    updated: int


def bars_upsert(
    *, frame: pd.DataFrame, symbol: str | None = None, timeframe: str
) -> BarUpsertResult:
    """Insert or overwrite bars on (symbol, timeframe, ts); every row is valid and written, or
    BarValidationError is raised and nothing is."""
    if not is_timeframe(timeframe):
        message = f"timeframe {timeframe!r} is not a count and a unit (m, h, d, w), e.g. 1d"
        raise BarValidationError(row=None, message=message)
    bars = validate_bars(frame, symbol=symbol)
    if "symbol" not in bars:
        raise BarValidationError(row=None, message="symbol is required for the payload or per bar")
    bars = bars.sort_values(["symbol", "ts"], kind="stable")
    spans = bars.groupby("symbol")["ts"].agg(["min", "max"])
    with transaction.atomic():
        before = _bars_in_spans(spans, timeframe)
        rows = _bar_rows(bars, timeframe)
        Bar.objects.bulk_create(
            rows,
            batch_size=BAR_UPSERT_BATCH_SIZE,
            update_conflicts=True,
            unique_fields=BAR_KEY_FIELDS,
            update_fields=BAR_VALUE_FIELDS,
        )
        # Exact unless another writer upserts the same keys at the same time.
        created = _bars_in_spans(spans, timeframe) - before
        result = BarUpsertResult(created=created, updated=len(rows) - created)
        event_publish(
            type="features.bars.ingested",
            subject=f"symbol:{spans.index[0]}" if len(spans) == 1 else "",
            payload={
                "symbols": spans.index.tolist(),
                "timeframe": timeframe,
                "rows": len(rows),
                "created": result.created,
                "updated": result.updated,
                "first_ts": spans["min"].min().isoformat(),
                "last_ts": spans["max"].max().isoformat(),
            },
        )
    return result


def _bar_rows(bars: pd.DataFrame, timeframe: str) -> list[Bar]:
    return [
        Bar(
            symbol=s,
            timeframe=timeframe,
            ts=ts.to_pydatetime(),
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=v,
        )
        for s, ts, o, h, lo, c, v in bars.itertuples(index=False, name=None)
    ]


def _bars_in_spans(spans: pd.DataFrame, timeframe: str) -> int:
    """Stored bars of each symbol between its first and last ingested ts (one index range each)."""
    return sum(
        Bar.objects.filter(
            symbol=symbol,
            timeframe=timeframe,
            ts__range=(first.to_pydatetime(), last.to_pydatetime()),
        ).count()
        for symbol, first, last in spans.itertuples(name=None)
    )
