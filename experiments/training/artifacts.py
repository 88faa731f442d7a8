"""The model pipeline and its artifact: JSON numbers, never a pickle (pure)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from scipy import special
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from experiments.training.common import DEFAULT_MODEL_PARAMS

# --- the model and its artifact -------------------------------------------------------------


def build_model(model_params: Mapping[str, Any] | None = None) -> Pipeline:
    """Median imputation → standardization → logistic regression (lbfgs, deterministic).

    `model_params` override DEFAULT_MODEL_PARAMS and must be LogisticRegression parameters.
    The imputer keeps a column that is all-missing in training (filled with 0), so the model
    always takes every feature, in order.
    """
    params = {**DEFAULT_MODEL_PARAMS, **(model_params or {})}
    unknown = sorted(set(params) - set(LogisticRegression().get_params()))
    if unknown:
        raise ValueError(f"unknown LogisticRegression parameter(s): {', '.join(unknown)}")
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("classifier", LogisticRegression(**params)),
        ]
    )


MODEL_FORMAT = "tradingsite.logistic-pipeline"
MODEL_FORMAT_VERSION = 1


class LogisticPipelineModel:
    """A fitted median-imputer → standard-scaler → logistic-regression pipeline, held as plain
    numbers: what a model artifact loads into. `predict_proba` computes exactly what the
    scikit-learn pipeline does (imputation of missing and ±inf values with the training
    medians, (x - mean) / scale, the logistic of x·coef + intercept), in numpy."""

    def __init__(
        self,
        *,
        feature_names: list[str] | None,
        medians: np.ndarray,
        mean: np.ndarray,
        scale: np.ndarray,
        coef: np.ndarray,
        intercept: float,
        params: dict[str, Any],
        sklearn_version: str,
    ) -> None:
        sizes = {len(medians), len(mean), len(scale), len(coef)}
        if len(sizes) != 1 or (feature_names is not None and len(feature_names) not in sizes):
            raise ValueError("model artifact: its arrays disagree on the number of features")
        if not (np.all(np.isfinite(medians)) and np.all(np.isfinite(mean))):
            raise ValueError("model artifact: non-finite imputation or scaling values")
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0) and np.all(np.isfinite(coef))):
            raise ValueError("model artifact: non-finite or non-positive scale or coefficients")
        if not np.isfinite(intercept):
            raise ValueError("model artifact: non-finite intercept")
        self.feature_names = feature_names
        self.medians, self.mean, self.scale, self.coef = medians, mean, scale, coef
        self.intercept = float(intercept)
        self.params = params
        self.sklearn_version = sklearn_version

    @property
    def n_features(self) -> int:
        return len(self.coef)

    def predict_proba(self, frame: pd.DataFrame | np.ndarray) -> np.ndarray:
        """[[P(down), P(up)], ...] per row; a DataFrame is read by the training feature names."""
        if isinstance(frame, pd.DataFrame) and self.feature_names is not None:
            missing = [n for n in self.feature_names if n not in frame.columns]
            if missing:
                raise ValueError(f"missing feature columns: {missing}")
            frame = frame[self.feature_names]
        x = np.asarray(frame, dtype=float).reshape(-1, self.n_features).copy()
        missing_values = ~np.isfinite(x)
        x[missing_values] = np.broadcast_to(self.medians, x.shape)[missing_values]
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        up = special.expit(z)
        return np.column_stack([1.0 - up, up])


def model_to_bytes(model: Pipeline) -> bytes:
    """The fitted pipeline as JSON numbers (a data format: loading it runs no code, unlike a
    pickle). Store it with `artifact_sha256(data)`."""
    impute, scale, classifier = (model.named_steps[k] for k in ("impute", "scale", "classifier"))
    if list(classifier.classes_) != [0, 1]:
        raise ValueError(f"expected classes [0, 1], got {list(classifier.classes_)}")
    names = getattr(impute, "feature_names_in_", None)
    document = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "sklearn_version": sklearn.__version__,
        "feature_names": None if names is None else [str(n) for n in names],
        "impute_medians": impute.statistics_.tolist(),
        "scale_mean": scale.mean_.tolist(),
        "scale_scale": scale.scale_.tolist(),
        "coef": classifier.coef_[0].tolist(),
        "intercept": float(classifier.intercept_[0]),
        "params": {k: v for k, v in classifier.get_params().items() if _plain(v)},
    }
    return json.dumps(document, allow_nan=False, sort_keys=True).encode()


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def model_from_bytes(data: bytes, *, sha256: str | None = None) -> LogisticPipelineModel:
    """Load a model written by `model_to_bytes`. JSON only: no code runs, whatever the bytes.

    With `sha256` the bytes are checked first (ValueError on a mismatch); the document's
    format, version and array shapes are validated (ValueError naming the problem)."""
    if sha256 is not None and artifact_sha256(data) != sha256.lower():
        raise ValueError("model artifact does not match its recorded sha256")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"model artifact is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != MODEL_FORMAT:
        raise ValueError(f"model artifact is not a {MODEL_FORMAT} document")
    if document.get("format_version") != MODEL_FORMAT_VERSION:
        raise ValueError(f"model artifact format_version {document.get('format_version')!r}")
    try:
        names = document["feature_names"]
        return LogisticPipelineModel(
            feature_names=None if names is None else [str(n) for n in names],
            medians=np.asarray(document["impute_medians"], dtype=float),
            mean=np.asarray(document["scale_mean"], dtype=float),
            scale=np.asarray(document["scale_scale"], dtype=float),
            coef=np.asarray(document["coef"], dtype=float),
            intercept=float(document["intercept"]),
            params=dict(document.get("params") or {}),
            sklearn_version=str(document.get("sklearn_version", "")),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"model artifact is missing or mistypes {exc}") from exc


def artifact_sha256(data: bytes) -> str:
    """Hex sha256 of an artifact: its content address and integrity check."""
    return hashlib.sha256(data).hexdigest()
