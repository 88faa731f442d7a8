"""`manage.py import_bars FILE [FILE ...]`: OHLCV CSV files into the bar store, file by file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from features.market import BarValidationError, read_ohlcv_csv
from features.services import bars_upsert


class Command(BaseCommand):
    help = (
        "Import OHLCV CSV files (a Date/Datetime/Timestamp column or an unnamed index column; "
        "Open/High/Low/Close/Volume in any case; Adj Close is ignored). Each file is all or "
        "nothing; a bad file is reported with its row (row 1 = the first line after the header) "
        "and the other files are still imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
        parser.add_argument(
            "--symbol", help="symbol of every file (default: a Symbol column, else the file stem)"
        )
        parser.add_argument("--timeframe", default="1d", help='bar spacing, e.g. "1d", "1h", "5m"')

    def handle(
        self, *args: Any, files: list[Path], symbol: str | None, timeframe: str, **options: Any
    ) -> None:
        failures = []
        for path in files:
            try:
                frame = read_ohlcv_csv(path)
                own_symbol = symbol or (None if "symbol" in frame else path.stem.upper())
                result = bars_upsert(frame=frame, symbol=own_symbol, timeframe=timeframe)
            except (BarValidationError, OSError) as exc:
                failures.append(f"{path}: {exc} (nothing written from this file)")
                continue
            self.stdout.write(f"{path}: {result.created} created, {result.updated} updated")
        if failures:
            raise CommandError("; ".join(failures))
