"""Train the next-bar direction model on a feature view and log it as an experiment run.

Load -> compute -> save: bars give the next-bar labels (`experiments.training.next_bar_labels`),
the feature store gives the point-in-time features for those entity rows (never a later bar),
`train_walk_forward` fits and validates in time order, and the run records everything a model
registry and a drift monitor need: params, per-fold and overall metrics, trading metrics of the
signal, the model artifact (sha256 recorded by the store), the folds, the out-of-fold predictions
and the reference statistics of the training features and predictions.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import yaml
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from experiments.models import Run
from experiments.services import (
    experiment_get_or_create,
    run_artifact_store,
    run_create,
    run_finish,
    run_log_batch,
)
from experiments.training import (
    artifact_sha256,
    model_to_bytes,
    next_bar_labels,
    train_walk_forward,
)
from features.models import Bar, FeatureView
from features.store import FeatureStoreError, feature_view_get, training_set_build

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "next-bar-direction"
LABEL_NAME = "next_bar_direction"
MODEL_ARTIFACT = "model/model.json"
MLMODEL_ARTIFACT = "model/MLmodel"  # makes model/ an MLflow model folder: see mlmodel_bytes
MODEL_FLAVOR = "tradingsite_logistic"
REFERENCE_ARTIFACT = "reference/statistics.json"
FOLDS_ARTIFACT = "validation/folds.json"
PREDICTIONS_ARTIFACT = "validation/oof_predictions.csv"
REFERENCE_SAMPLE_SIZE = 2_000
SECONDS_PER_YEAR = 365.25 * 86_400
METRICS_PER_BATCH = 1_000


class TrainingError(ValueError):
    """The training request cannot be honoured; the message says why (API/command: 400)."""


def mlmodel_bytes(*, run: Run, model_sha256: str, view: FeatureView | None) -> bytes:
    """The MLmodel file of a run's model folder. `mlflow.register_model("runs:/<id>/model")`
    looks for one before it calls the server; it names our one flavor, the JSON model file
    and its sha256, and the feature view it expects. There is deliberately no `python_function`
    flavor: `mlflow.pyfunc.load_model` would want pickled Python objects, which tradingsite
    never loads (POST /api/v1/models/{name}/predict serves the model instead)."""
    flavor: dict[str, Any] = {
        "data": MODEL_ARTIFACT.split("/", 1)[1],
        "format": "tradingsite.LogisticPipelineModel (JSON, never pickle)",
        "sha256": model_sha256,
    }
    if view is not None:
        flavor["feature_view"] = {"name": view.name, "version": view.version}
        flavor["feature_names"] = list(view.feature_names)
    document = {
        "artifact_path": MODEL_ARTIFACT.split("/", 1)[0],
        "flavors": {MODEL_FLAVOR: flavor},
        "run_id": run.run_uuid,
        "utc_time_created": datetime.fromtimestamp(run.start_time / 1000, UTC).strftime(
            "%Y-%m-%d %H:%M:%S.%f"
        ),
    }
    return yaml.safe_dump(document, sort_keys=False).encode()


def _view(name: str, version: int | None) -> FeatureView:
    try:
        return feature_view_get(name, version or None)
    except FeatureView.DoesNotExist as exc:
        raise TrainingError(str(exc)) from exc


def _bars(
    view: FeatureView, symbols: Sequence[str] | None, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    bars = Bar.objects.filter(timeframe=view.timeframe)
    if symbols:
        missing = sorted(set(symbols) - set(bars.values_list("symbol", flat=True).distinct()))
        if missing:
            raise TrainingError(f"no {view.timeframe} bars for symbols {missing}")
        bars = bars.filter(symbol__in=symbols)
    if start is not None:
        bars = bars.filter(ts__gte=start)
    if end is not None:
        bars = bars.filter(ts__lte=end)
    frame = pd.DataFrame.from_records(bars.values("symbol", "ts", "close"))
    if frame.empty:
        raise TrainingError("no bars in the requested symbols and window")
    return frame


def periods_per_year(ts: pd.Series) -> float:
    """Bars per year as the data has them (a crypto symbol trades 365 days, stocks ~252)."""
    unique = pd.Series(ts.unique()).sort_values()
    span = (unique.iloc[-1] - unique.iloc[0]).total_seconds() if len(unique) > 1 else 0.0
    return float((len(unique) - 1) / (span / SECONDS_PER_YEAR)) if span > 0 else 252.0


def _param_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def model_train(
    *,
    view_name: str | None = None,
    view_version: int | None = None,
    symbols: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    experiment_name: str = DEFAULT_EXPERIMENT,
    run_name: str = "",
    n_folds: int = 5,
    min_train: float = 0.5,
    gap: int = 0,
    model_params: Mapping[str, Any] | None = None,
    user: AbstractBaseUser | None = None,
    source: str = "tradingsite.experiments.train",
) -> Run:
    """Train on `view_name` (default DEFAULT_FEATURE_VIEW) and return the FINISHED run.

    Bad requests (unknown view or symbols, no bars, too few rows for the folds) raise
    TrainingError before a run exists; a failure while training marks the run FAILED."""
    if n_folds < 1 or gap < 0 or not (min_train > 0):
        raise TrainingError(
            f"need n_folds >= 1, gap >= 0 and min_train > 0 (got {n_folds}, {gap}, {min_train})"
        )
    view = _view(view_name or settings.DEFAULT_FEATURE_VIEW, view_version)
    bars = _bars(view, symbols, start, end)
    entities = next_bar_labels(bars)
    if entities.empty:
        raise TrainingError("no labelled bars: every symbol needs at least two bars")
    try:
        frame = training_set_build(view=view, entities=entities)
    except FeatureStoreError as exc:
        raise TrainingError(str(exc)) from exc
    chosen = sorted(bars["symbol"].unique())
    window = {"start": bars["ts"].min().isoformat(), "end": bars["ts"].max().isoformat()}
    experiment = experiment_get_or_create(
        name=experiment_name,
        description="Next-bar direction classifiers trained on point-in-time feature views.",
    )
    run = run_create(
        experiment=experiment,
        name=run_name,
        user=user,
        source=source,
        feature_view=view,
        training_set={
            "symbols": chosen,
            "window": window,
            "label": LABEL_NAME,
            "entity_rows": len(entities),
            "timeframe": view.timeframe,
        },
        tags={"tradingsite.feature_view": f"{view.name}:v{view.version}"},
    )
    try:
        _fit_and_log(run, view, frame, chosen, n_folds, min_train, gap, model_params)
    except Exception as exc:
        logger.exception("training run %s failed", run.run_uuid)
        run_log_batch(run=run, tags={"tradingsite.error": repr(exc)[:5000]})
        run_finish(run=run, status=Run.Status.FAILED)
        if isinstance(exc, ValueError):
            raise TrainingError(str(exc)) from exc
        raise
    run_finish(run=run)
    run.refresh_from_db()
    return run


def _fit_and_log(
    run: Run,
    view: FeatureView,
    frame: pd.DataFrame,
    symbols: list[str],
    n_folds: int,
    min_train: float,
    gap: int,
    model_params: Mapping[str, Any] | None,
) -> None:
    per_year = periods_per_year(frame["ts"])
    result = train_walk_forward(
        frame,
        list(view.feature_names),
        model_params=model_params,
        n_folds=n_folds,
        min_train=min_train,
        gap=gap,
        periods_per_year=per_year,
    )
    params = {key: _param_value(v) for key, v in result.params.items()}
    params.update(
        feature_view=view.name,
        feature_view_version=str(view.version),
        symbols=",".join(symbols),
        label=LABEL_NAME,
        periods_per_year=f"{per_year:.1f}",
    )
    run_log_batch(run=run, params=params)
    metrics = list(result.flat_metrics().items())
    for i in range(0, len(metrics), METRICS_PER_BATCH):
        run_log_batch(run=run, metrics=dict(metrics[i : i + METRICS_PER_BATCH]))
    # Per-fold metrics again as histories (step = fold), for charts of the walk forward.
    fold_points = [
        {"key": f"walk_forward/{key}", "value": float(fold[key]), "step": int(fold["fold"])}
        for fold in result.folds
        for key in ("accuracy", "roc_auc", "log_loss", "sharpe")
    ]
    run_log_batch(run=run, metrics=fold_points)
    model_bytes = model_to_bytes(result.model)
    run_artifact_store(
        run=run, name=MODEL_ARTIFACT, data=model_bytes, content_type="application/json"
    )
    run_artifact_store(
        run=run,
        name=MLMODEL_ARTIFACT,
        data=mlmodel_bytes(run=run, model_sha256=artifact_sha256(model_bytes), view=view),
        content_type="application/yaml",
    )
    reference = result.reference_statistics(sample_size=REFERENCE_SAMPLE_SIZE)
    run_artifact_store(
        run=run,
        name=REFERENCE_ARTIFACT,
        data=json.dumps(reference, allow_nan=False).encode(),
        content_type="application/json",
    )
    run_artifact_store(
        run=run,
        name=FOLDS_ARTIFACT,
        data=json.dumps(_json_safe(result.folds), allow_nan=False).encode(),
        content_type="application/json",
    )
    buffer = io.StringIO()
    result.predictions.to_csv(buffer, index=False)
    run_artifact_store(
        run=run,
        name=PREDICTIONS_ARTIFACT,
        data=buffer.getvalue().encode(),
        content_type="text/csv",
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
