from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from features.demo import demo_bars
from features.models import FeatureRow
from features.services import bars_upsert
from features.store import feature_view_register

pytestmark = pytest.mark.django_db(transaction=True)  # the progress bar reads from a thread


def test_it_materializes_with_a_progress_bar_and_a_summary() -> None:
    bars_upsert(frame=demo_bars(symbols=("AAA", "BBB"), n_bars=80), timeframe="1d")
    feature_view_register(name="core_technical")
    out = StringIO()
    call_command("materialize", "--full", stdout=out)
    text = out.getvalue()
    assert "100.0% 2/2 symbols, 160 rows" in text
    assert "core_technical v1: 160 rows for 2 symbol(s)" in text
    assert FeatureRow.objects.count() == 160


def test_unknown_views_and_symbols_are_command_errors() -> None:
    with pytest.raises(CommandError, match="no feature view"):
        call_command("materialize", "nope")
    feature_view_register(name="core_technical")
    with pytest.raises(CommandError, match="ZZZ"):
        call_command("materialize", "--symbols", "ZZZ")
