"""Feature views, materialization, online lookup and point-in-time training sets."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from features.demo import demo_bars
from features.models import FeatureRow, MaterializationJob
from features.services import bars_upsert
from features.store import (
    FeatureStoreError,
    feature_view_ensure_default,
    feature_view_materialize,
    feature_view_register,
    online_features,
    training_set_build,
)
from features.transforms import CORE_TECHNICAL, compute_features
from tradingsite.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def all_bars() -> pd.DataFrame:
    return demo_bars(symbols=("AAA", "BBB"), n_bars=310)


@pytest.fixture
def bars(all_bars: pd.DataFrame) -> pd.DataFrame:
    """The first 300 bars of each symbol; the last 10 arrive later."""
    return all_bars.groupby("symbol").head(300).reset_index(drop=True)


@pytest.fixture
def view(bars: pd.DataFrame):  # noqa: ANN201
    bars_upsert(frame=bars, timeframe="1d")
    return feature_view_ensure_default()


def test_the_default_view_is_registered_and_materialized_once(view, bars) -> None:  # noqa: ANN001
    assert list(view.feature_names) == list(CORE_TECHNICAL)
    job = view.jobs.get()
    assert (job.status, job.rows_written, job.progress_pct) == ("succeeded", 600, 100.0)
    assert 0 <= job.quality["score"] <= 100
    assert set(job.quality["features"]) == set(CORE_TECHNICAL)
    assert feature_view_ensure_default() == view  # unchanged definition: same version, no job
    assert view.jobs.count() == 1
    assert Event.objects.filter(type="features.materialized").count() == 1


def test_a_changed_definition_is_a_new_version_and_the_old_one_stays(view) -> None:  # noqa: ANN001
    newer, created = feature_view_register(name=view.name, feature_names=["rsi_14", "atr_14"])
    assert created and newer.version == view.version + 1
    view.refresh_from_db()
    assert list(view.feature_names) == list(CORE_TECHNICAL)


def test_unknown_features_are_refused() -> None:
    with pytest.raises(FeatureStoreError, match="unknown"):
        feature_view_register(name="x", feature_names=["rsi_14", "astrology"])


def test_offline_rows_equal_the_pure_transform(view, bars) -> None:  # noqa: ANN001
    expected = compute_features(bars[bars.symbol == "BBB"].reset_index(drop=True))
    row = FeatureRow.objects.get(view=view, symbol="BBB", ts=expected["ts"].iloc[-1])
    assert row.values == pytest.approx(  # noqa: PD011 (a model field, not pandas)
        expected[list(CORE_TECHNICAL)].iloc[-1].tolist()
    )


def test_incremental_materialization_writes_only_new_bars_with_full_run_values(
    view,  # noqa: ANN001
    all_bars: pd.DataFrame,
) -> None:
    more = all_bars
    bars_upsert(frame=more, timeframe="1d")
    job = feature_view_materialize(view=view)
    assert job.rows_written == 20
    full = compute_features(more[more.symbol == "AAA"].reset_index(drop=True))
    row = FeatureRow.objects.get(view=view, symbol="AAA", ts=full["ts"].iloc[-1])
    assert row.values == pytest.approx(  # noqa: PD011 (a model field, not pandas)
        full[list(CORE_TECHNICAL)].iloc[-1].tolist(), rel=1e-9
    )


def test_materializing_unknown_symbols_is_refused(view) -> None:  # noqa: ANN001
    with pytest.raises(FeatureStoreError, match="ZZZ"):
        feature_view_materialize(view=view, symbols=["ZZZ"])
    assert MaterializationJob.objects.count() == 1


def test_online_lookup_returns_the_latest_row_and_flags_missing(view, bars) -> None:  # noqa: ANN001
    found, missing = online_features(view=view, symbols=["AAA", "NOPE"])
    last = bars[bars.symbol == "AAA"]["ts"].max()
    assert pd.Timestamp(found["ts"]) == last
    assert set(found["values"]) == set(CORE_TECHNICAL)
    assert missing == {"symbol": "NOPE", "ts": None, "values": None, "stale": True}


def test_point_in_time_uses_the_bar_closed_at_or_before_and_respects_ttl(view, bars) -> None:  # noqa: ANN001
    ts = bars[bars.symbol == "AAA"]["ts"].reset_index(drop=True)
    entities = pd.DataFrame(
        {
            "symbol": ["AAA", "AAA", "AAA", "BBB"],
            "ts": [ts[100], ts[100] + timedelta(hours=1), ts[0] - timedelta(days=30), ts[299]],
            "label": [1, 0, 1, 0],
        }
    )
    result = training_set_build(view=view, entities=entities)
    assert list(result["label"]) == [1, 0, 1, 0]  # entity order kept
    assert result["feature_ts"][0] == ts[100]  # exact close time counts as "at or before"
    assert result["feature_ts"][1] == ts[100]
    assert pd.isna(result["feature_ts"][2])  # no bar that early
    assert result["feature_ts"][3] <= entities["ts"][3]


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.lists(
        st.integers(min_value=-5 * 86_400, max_value=320 * 86_400), min_size=1, max_size=40
    )
)
def test_point_in_time_never_returns_a_later_bar(view, bars, offsets: list[int]) -> None:  # noqa: ANN001
    start = bars["ts"].min()
    entities = pd.DataFrame(
        {
            "symbol": np.where(np.arange(len(offsets)) % 2, "AAA", "BBB"),
            "ts": [start + timedelta(seconds=o) for o in offsets],
        }
    )
    result = training_set_build(view=view, entities=entities)
    matched = result.dropna(subset=["feature_ts"])
    assert (matched["feature_ts"] <= matched["ts"]).all()
    assert ((matched["ts"] - matched["feature_ts"]) <= timedelta(seconds=view.ttl_seconds)).all()


def test_an_empty_online_cache_is_refilled_from_the_offline_store(view, bars) -> None:  # noqa: ANN001
    from django.core.cache import cache

    cache.clear()  # e.g. another process's in-memory cache, or a flushed Redis
    (found,) = online_features(view=view, symbols=["BBB"])
    assert pd.Timestamp(found["ts"]) == bars[bars.symbol == "BBB"]["ts"].max()
    assert cache.get(f"online:{view.pk}:BBB") is not None
