"""Prediction drift of one scan: the distribution of the version's predicted P(up) over the
current window against its reference's "prediction" column (the final model's predictions on
its training rows, stored at training time).

The current predictions are, for a window of logged predictions, the P(up) the version answered
for each row; for a window of materialized features, which no model has seen, the version's own
model run on the rows, loaded and hash-checked by registry.serving. When they cannot be had (no
prediction column in the reference, no usable model artifact) the result says why, in words,
and holds no number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.services.windows import Window
from drift.severity import FeatureDrift
from drift.statistics import DriftOptions, prediction_drift_statistics
from registry import serving
from registry.errors import RegistryError
from registry.models import ModelVersion, Stage

LOGGED = "logged"  # the probabilities served and logged with the window's rows
MODEL = "model"  # the version's model run on the window's feature rows
NO_REFERENCE = (
    "the reference statistics hold no prediction column (the version was registered without "
    "its training predictions)"
)


@dataclass(frozen=True)
class PredictionDrift:
    """The graded prediction drift (`result`), or None and the `reason` it is absent; `origin`
    says where the current predictions came from (LOGGED, MODEL, "" when none were sought)."""

    result: FeatureDrift | None
    origin: str
    reason: str = ""

    @property
    def severity(self) -> str:
        """The graded severity, "" when not computed (DriftReport.prediction_severity)."""
        return "" if self.result is None else str(self.result.severity)

    @property
    def statistics(self) -> dict[str, Any] | None:
        """JSON-ready statistics (DriftReport.prediction_statistics), None when not computed."""
        return None if self.result is None else self.result.as_dict()


def prediction_drift(
    *, version: ModelVersion, window: Window, options: DriftOptions
) -> PredictionDrift:
    """The version's prediction drift over `window`, graded with the features' `options`."""
    reference = version.reference_statistics or {}
    column = reference.get("prediction")
    if not isinstance(column, Mapping):
        return PredictionDrift(None, "", NO_REFERENCE)
    if not (column.get("summary") or {}).get("count"):
        return PredictionDrift(None, "", "the reference's prediction column holds no values")
    if window.predictions is not None:
        origin, current = LOGGED, window.predictions
    else:
        origin = MODEL
        try:
            current = _model_predictions(version, window)
        except (RegistryError, ValueError) as exc:
            return PredictionDrift(None, origin, f"the model could not be run: {exc}")
    if not np.isfinite(current).any():
        return PredictionDrift(None, origin, "no finite predicted probability in the window")
    try:
        result = prediction_drift_statistics(
            reference, current, options=options, current_series=window.series
        )
    except ValueError as exc:  # a malformed stored column
        return PredictionDrift(None, origin, f"cannot compare with the reference: {exc}")
    return PredictionDrift(result, origin)


def _model_predictions(version: ModelVersion, window: Window) -> np.ndarray:
    """P(up) of the version's model on each window row; NaN on a row without any value, which
    serving does not predict either (and training drops)."""
    model = _version_model(version).model
    out = np.full(window.n_rows, np.nan)
    usable = np.isfinite(window.matrix).any(axis=1)
    if usable.any():
        out[usable] = model.predict_proba(window.matrix[usable])[:, 1]
    return out


def _version_model(version: ModelVersion) -> serving.LoadedModel:
    """The version's verified model from registry.serving: the model this process serves when
    the version is the one in Production (loaded once, cached), else the same loader's
    hash-checked load of this version. RegistryError says why it cannot be used."""
    if version.stage == Stage.PRODUCTION:
        served = serving.served_model(version.model.name)
        if served.version_id == version.pk:
            return served
    # A scan of a version that is no longer (or not) served: serving's own loader, which
    # verifies the artifact's sha256 and format, for this version only (nothing cached).
    return serving.load_version(version.pk)
