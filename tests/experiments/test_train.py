"""`experiments.train.model_train`, `manage.py train` and the demo run of `bootstrap_demo`."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pandas as pd
import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from experiments import train as train_module
from experiments.models import Run
from experiments.storage import blob_open
from experiments.train import (
    MLMODEL_ARTIFACT,
    MODEL_ARTIFACT,
    REFERENCE_ARTIFACT,
    TrainingError,
    model_train,
)
from experiments.training import model_from_bytes
from features.demo import DEMO_SYMBOLS, demo_bars, late_regime_first_bar
from features.models import Bar
from features.services import bars_upsert
from features.store import feature_view_ensure_default

pytestmark = pytest.mark.django_db
SYMBOLS = ("AAA", "BBB", "CCC")


@pytest.fixture
def view():  # noqa: ANN201
    bars_upsert(frame=demo_bars(symbols=SYMBOLS, n_bars=400), timeframe="1d")
    return feature_view_ensure_default()


def _artifact_bytes(run: Run, path: str) -> bytes:
    artifact = run.artifacts.get(path=path)
    with blob_open(artifact.sha256) as handle:
        return handle.read()


def test_a_training_run_logs_params_metrics_model_and_reference(view) -> None:  # noqa: ANN001
    run = model_train(n_folds=3)
    assert run.status == Run.Status.FINISHED and run.end_time is not None
    assert run.feature_view == view
    assert run.training_set["view"] == view.name and run.training_set["symbols"] == list(SYMBOLS)
    params = dict(run.params.values_list("key", "value"))
    assert params["feature_view"] == view.name and params["feature_view_version"] == "1"
    assert params["label"] == "next_bar_direction"
    latest = dict(run.latest_metrics.values_list("key", "value"))
    for key in ("accuracy", "roc_auc", "log_loss", "sharpe", "max_drawdown", "hit_rate"):
        assert key in latest
    assert 0.0 <= latest["accuracy"] <= 1.0 and latest["max_drawdown"] <= 0.0
    assert {f"fold_{i}/accuracy" for i in (1, 2, 3)} <= set(latest)
    history = run.metrics.filter(key="walk_forward/accuracy").order_by("step")
    assert [m.step for m in history] == [1, 2, 3]

    model_artifact = run.artifacts.get(path=MODEL_ARTIFACT)
    model = model_from_bytes(_artifact_bytes(run, MODEL_ARTIFACT), sha256=model_artifact.sha256)
    frame = pd.DataFrame([[0.0] * len(view.feature_names)], columns=view.feature_names)
    assert 0.0 <= model.predict_proba(frame)[0, 1] <= 1.0
    mlmodel = yaml.safe_load(_artifact_bytes(run, MLMODEL_ARTIFACT))
    flavor = mlmodel["flavors"]["tradingsite_logistic"]
    assert (mlmodel["run_id"], flavor["data"]) == (run.run_uuid, "model.json")
    assert flavor["sha256"] == model_artifact.sha256
    assert flavor["feature_names"] == list(view.feature_names)
    assert "python_function" not in mlmodel["flavors"]  # nothing that would unpickle
    reference = json.loads(_artifact_bytes(run, REFERENCE_ARTIFACT))
    assert reference["schema_version"] == 2
    assert set(reference["features"]) == set(view.feature_names)
    assert all(column["autocorrelation_time"] >= 1.0 for column in reference["features"].values())
    assert reference["prediction"]["summary"]["count"] > 0


def test_the_window_bounds_the_training_rows(view) -> None:  # noqa: ANN001
    end = pd.Timestamp(demo_bars(symbols=SYMBOLS, n_bars=400)["ts"].quantile(0.6))
    run = model_train(symbols=["AAA", "BBB"], end=end.to_pydatetime(), n_folds=2)
    predictions = pd.read_csv(
        StringIO(_artifact_bytes(run, "validation/oof_predictions.csv").decode())
    )
    assert set(predictions["symbol"]) == {"AAA", "BBB"}
    assert pd.to_datetime(predictions["ts"]).max() <= end
    assert run.training_set["window"]["end"] <= end.isoformat()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbols": ["NOPE"]}, "no 1d bars for symbols"),
        ({"view_name": "nope"}, "no feature view"),
        ({"n_folds": 0}, "n_folds"),
        ({"start": pd.Timestamp("2100-01-01", tz="UTC").to_pydatetime()}, "no bars"),
    ],
)
def test_bad_requests_create_no_run(view, kwargs: dict[str, Any], message: str) -> None:  # noqa: ANN001
    with pytest.raises(TrainingError, match=message):
        model_train(**kwargs)
    assert not Run.objects.exists()


def test_a_failure_while_training_marks_the_run_failed(view, monkeypatch) -> None:  # noqa: ANN001
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(train_module, "train_walk_forward", broken)
    with pytest.raises(RuntimeError, match="solver exploded"):
        model_train()
    run = Run.objects.get()
    assert run.status == Run.Status.FAILED
    assert "solver exploded" in run.tags.get(key="tradingsite.error").value


def test_the_command_prints_the_run_and_refuses_bad_dates(view) -> None:  # noqa: ANN001
    out = StringIO()
    call_command("train", "--symbols", "AAA", "--folds", "2", stdout=out)
    assert "FINISHED" in out.getvalue() and "accuracy" in out.getvalue()
    with pytest.raises(CommandError, match="--end"):
        call_command("train", "--end", "2024-13-01")


def test_bootstrap_demo_trains_one_demo_run_before_the_late_regime() -> None:
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    call_command("bootstrap_demo", stdout=StringIO())  # idempotent: still one run
    run = Run.objects.get()
    assert (run.name, run.status) == ("demo", Run.Status.FINISHED)
    assert "Trained demo run" in out.getvalue()
    window_end = pd.Timestamp(run.training_set["window"]["end"])
    for symbol in DEMO_SYMBOLS:
        stamps = list(Bar.objects.filter(symbol=symbol).order_by("ts").values_list("ts", flat=True))
        first_late = pd.Timestamp(stamps[late_regime_first_bar(len(stamps))])
        assert window_end < first_late, symbol  # drift monitoring will see the new regime
