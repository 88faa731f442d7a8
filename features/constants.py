"""Limits and formats of the market-data store, shared by the models, services and API."""

from __future__ import annotations

SYMBOL_MAX_LENGTH = 32
TIMEFRAME_MAX_LENGTH = 8
# A count and a unit: m = minutes, h = hours, d = days, w = weeks ("5m", "1h", "1d", "1w").
# Months are left out on purpose: their length varies, so "1mo" names no fixed bar spacing.
TIMEFRAME_PATTERN = r"^[1-9][0-9]{0,3}[mhdw]$"
MAX_BARS_PER_REQUEST = 50_000
# Rows per INSERT ... ON CONFLICT; Django lowers it further where SQLite's parameter limit needs.
BAR_UPSERT_BATCH_SIZE = 2_000
