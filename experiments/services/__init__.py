"""Writes of the experiment tracker: experiments, runs, batches of params/metrics/tags, artifacts.

Every service validates all of its input before it writes, and writes in one transaction, so a
rejected request leaves nothing behind. The native API, the MLflow API and the training pipeline
call these same functions. Errors are experiments.errors.TrackingError subclasses.

For the training pipeline, the short path is:

    experiment = experiment_get_or_create(name="core_technical-direction")
    run = run_create(experiment=experiment, name="walk-forward", source="manage.py train")
    run_link_feature_view(run=run, feature_view=view, training_set={...})
    run_log_batch(run=run, params={"C": 1.0}, metrics={"accuracy": 0.54}, step=fold)
    run_artifact_store(run=run, name="model/model.json", data=model_bytes)
    run_finish(run=run)                       # or run_finish(run=run, status=Run.Status.FAILED)
"""

from __future__ import annotations

from experiments.services.artifacts import run_artifact_delete, run_artifact_store
from experiments.services.batches import (
    MLFLOW_LIMITS,
    NATIVE_LIMITS,
    BatchLimits,
    run_log_batch,
    run_tag_delete,
)
from experiments.services.common import now_ms
from experiments.services.experiments import (
    experiment_create,
    experiment_default,
    experiment_delete,
    experiment_get_or_create,
    experiment_restore,
    experiment_tag_delete,
    experiment_tag_set,
    experiment_update,
)
from experiments.services.runs import (
    run_create,
    run_delete,
    run_finish,
    run_link_feature_view,
    run_restore,
    run_update,
)

__all__ = [
    "MLFLOW_LIMITS",
    "NATIVE_LIMITS",
    "BatchLimits",
    "experiment_create",
    "experiment_default",
    "experiment_delete",
    "experiment_get_or_create",
    "experiment_restore",
    "experiment_tag_delete",
    "experiment_tag_set",
    "experiment_update",
    "now_ms",
    "run_artifact_delete",
    "run_artifact_store",
    "run_create",
    "run_delete",
    "run_finish",
    "run_link_feature_view",
    "run_log_batch",
    "run_restore",
    "run_tag_delete",
    "run_update",
]
