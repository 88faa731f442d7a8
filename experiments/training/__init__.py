"""The pure part of training: labels, walk-forward folds, the model, metrics, reference statistics.

numpy/pandas/scikit-learn only, never Django; one module per concern (labels, metrics, artifacts,
walk_forward; the reference statistics drift monitoring needs are
drift.reference's). `manage.py train` (a service) loads the training set through
`features.store.training_set_build`, calls `train_walk_forward`, and saves what it returns
(params, metrics, the model artifact, the reference statistics).

Conventions shared by every function here:
- An entity row is one bar of one symbol: `ts` is the bar's close time, the label says whether the
  *next* bar of that symbol closed higher, `fwd_return` is that next bar's simple return.
- Signal rule: position = +1 (long) when P(up) > 0.5, -1 (short) when P(up) < 0.5, 0 (flat) at
  exactly 0.5 or when the probability is missing; `long_only=True` turns the shorts into flats.
  The predicted class is 1 exactly when the position is long (P(up) > 0.5).
- Trading assumes a fill at the close of the signal bar, no costs, and capital split equally
  over the symbols present at each timestamp (see `trading_metrics`).
"""

from __future__ import annotations

from drift.reference import histogram_counts, reference_statistics
from experiments.training.artifacts import (
    artifact_sha256,
    build_model,
    model_from_bytes,
    model_to_bytes,
)
from experiments.training.common import DEFAULT_MODEL_PARAMS, FWD_RETURN, LABEL
from experiments.training.labels import next_bar_labels, walk_forward_splits
from experiments.training.metrics import (
    classification_metrics,
    positions_from_proba,
    trading_metrics,
)
from experiments.training.walk_forward import TrainingResult, train_walk_forward

__all__ = [
    "DEFAULT_MODEL_PARAMS",
    "FWD_RETURN",
    "LABEL",
    "TrainingResult",
    "artifact_sha256",
    "build_model",
    "classification_metrics",
    "histogram_counts",
    "model_from_bytes",
    "model_to_bytes",
    "next_bar_labels",
    "positions_from_proba",
    "reference_statistics",
    "trading_metrics",
    "train_walk_forward",
    "walk_forward_splits",
]
