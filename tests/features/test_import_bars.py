"""manage.py import_bars: CSV files into the bar store, each file all or nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from features.models import Bar

pytestmark = pytest.mark.django_db
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
GOOD_ROWS = "2024-01-02,10,11,9.5,10.5,10.1,100\n2024-01-03,10.5,12,10,11.5,11.1,150\n"


def _import(*files: Path, **options: str) -> str:
    out = io.StringIO()
    call_command("import_bars", *map(str, files), stdout=out, **options)
    return out.getvalue()


def test_a_good_file_is_imported_under_its_stem(tmp_path: Path) -> None:
    csv = tmp_path / "aapl.csv"
    csv.write_text(HEADER + GOOD_ROWS)
    assert _import(csv) == f"{csv}: 2 created, 0 updated\n"
    assert list(Bar.objects.order_by("ts").values_list("symbol", "timeframe", "close")) == [
        ("AAPL", "1d", 10.5),
        ("AAPL", "1d", 11.5),
    ]


def test_importing_again_updates_and_symbol_and_timeframe_can_be_given(tmp_path: Path) -> None:
    csv = tmp_path / "prices.csv"
    csv.write_text(HEADER + GOOD_ROWS)
    _import(csv, symbol="SPY", timeframe="1h")
    assert _import(csv, symbol="SPY", timeframe="1h") == f"{csv}: 0 created, 2 updated\n"
    assert Bar.objects.filter(symbol="SPY", timeframe="1h").count() == 2


def test_a_bad_file_names_its_row_and_writes_nothing(tmp_path: Path) -> None:
    csv = tmp_path / "msft.csv"
    csv.write_text(HEADER + GOOD_ROWS + "2024-01-04,11,10,12,11,11,100\n")
    with pytest.raises(CommandError, match=r"msft\.csv: row 3: high < low"):
        _import(csv)
    assert Bar.objects.count() == 0


def test_good_files_are_still_imported_beside_a_bad_one(tmp_path: Path) -> None:
    good, bad = tmp_path / "aapl.csv", tmp_path / "msft.csv"
    good.write_text(HEADER + GOOD_ROWS)
    bad.write_text(HEADER + GOOD_ROWS + "2024-01-03,10,11,9.5,10.5,10.1,-1\n")
    with pytest.raises(CommandError, match=r"msft\.csv: row 3: negative volume"):
        _import(bad, good)
    assert set(Bar.objects.values_list("symbol", flat=True)) == {"AAPL"}


def test_a_missing_file_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="nope.csv"):
        _import(tmp_path / "nope.csv")
