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

# Who may write (reads need a login only); the data engineer role holds both. An ingest is an
# upsert (a bar already stored with the same key is replaced), granted with adding bars.
INGEST_BARS_PERMISSION = "features.add_bar"
MATERIALIZE_PERMISSION = "features.materialize_featureview"  # FeatureView.Meta.permissions
