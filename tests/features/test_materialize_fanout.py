"""Materialization as a Celery group, one task per symbol (run inline here: eager Celery; the
e2e test in tests/e2e/test_materialize_fanout.py runs it on two real workers)."""

from __future__ import annotations

import pandas as pd
import pytest

from features import store
from features.demo import demo_bars
from features.models import FeatureRow, MaterializationJob
from features.services import bars_upsert
from features.store import (
    feature_view_materialize,
    feature_view_register,
    materialization_job_create,
    materialize_symbol,
)
from features.tasks import feature_view_materialize_task
from tradingsite.models import Event

pytestmark = pytest.mark.django_db
SYMBOLS = ("AAA", "BBB", "CCC")


@pytest.fixture
def view():  # noqa: ANN201
    bars_upsert(frame=demo_bars(symbols=SYMBOLS, n_bars=200), timeframe="1d")
    return feature_view_register(name="fanout")[0]


def test_the_task_fans_out_per_symbol_and_the_last_symbol_finishes_the_job(view) -> None:  # noqa: ANN001
    job = materialization_job_create(view=view, mode="full")
    assert feature_view_materialize_task.delay(job.pk).get() == len(SYMBOLS)
    job.refresh_from_db()
    assert (job.status, job.symbols_done, job.rows_written) == ("succeeded", 3, 600)
    assert set(job.partials) == set(SYMBOLS)
    assert FeatureRow.objects.filter(view=view).count() == 600
    assert Event.objects.filter(type="features.materialized").count() == 1


def test_fanned_out_and_inline_runs_store_the_same_rows_and_quality(view) -> None:  # noqa: ANN001
    job = materialization_job_create(view=view, mode="full")
    feature_view_materialize_task.delay(job.pk)
    job.refresh_from_db()
    fanned = pd.DataFrame(FeatureRow.objects.filter(view=view).values("symbol", "ts", "values"))
    inline = feature_view_materialize(view=view, mode="full")
    again = pd.DataFrame(FeatureRow.objects.filter(view=view).values("symbol", "ts", "values"))
    assert inline.quality == job.quality
    key = ["symbol", "ts"]
    left, right = fanned.sort_values(key).reset_index(drop=True), again.sort_values(key)
    assert left["ts"].tolist() == right["ts"].tolist()
    flat = [x for v in left["values"] for x in v]
    assert flat == pytest.approx([x for v in right["values"] for x in v], nan_ok=True)


def test_a_symbol_recorded_twice_counts_once(view) -> None:  # noqa: ANN001
    job = materialization_job_create(view=view, mode="full")
    assert materialize_symbol(job=job, view=view, symbol="AAA") is False
    assert materialize_symbol(job=job, view=view, symbol="AAA") is False  # a retried task
    job.refresh_from_db()
    assert (job.symbols_done, job.rows_written) == (1, 200)
    materialize_symbol(job=job, view=view, symbol="BBB")
    assert materialize_symbol(job=job, view=view, symbol="CCC") is True


def test_a_failing_symbol_fails_the_job_and_names_the_symbol(view, monkeypatch) -> None:  # noqa: ANN001
    real = store._materialize_symbol

    def broken(view, symbol, *, full):  # noqa: ANN001, ANN202
        if symbol == "BBB":
            raise ValueError("bad bars")
        return real(view, symbol, full=full)

    monkeypatch.setattr(store, "_materialize_symbol", broken)
    job = materialization_job_create(view=view, mode="full")
    with pytest.raises(ValueError, match="bad bars"):
        feature_view_materialize_task.delay(job.pk)
    job.refresh_from_db()
    assert job.status == MaterializationJob.Status.FAILED
    assert job.error.startswith("BBB: ValueError")
    assert not Event.objects.filter(type="features.materialized").exists()


def test_a_full_run_replaces_rows_of_bars_that_are_gone(view) -> None:  # noqa: ANN001
    feature_view_materialize(view=view, mode="full")
    last = FeatureRow.objects.filter(view=view, symbol="AAA").latest("ts")
    from features.models import Bar

    Bar.objects.filter(symbol="AAA", ts=last.ts).delete()
    feature_view_materialize(view=view, mode="full")
    assert not FeatureRow.objects.filter(view=view, symbol="AAA", ts=last.ts).exists()
    assert FeatureRow.objects.filter(view=view, symbol="AAA").count() == 199


def test_an_incremental_run_without_new_bars_keeps_an_honest_quality(view) -> None:  # noqa: ANN001
    full = feature_view_materialize(view=view, mode="full")
    nothing_new = feature_view_materialize(view=view, mode="incremental")
    assert nothing_new.rows_written == 0
    assert nothing_new.quality["score"] >= full.quality["score"] - 10
