"""The model pipeline and its artifact bytes (pure)."""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Mapping
from typing import Any

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


_NUMPY_GLOBALS = {
    (f"numpy.{core}.{module}", name)
    for core in ("_core", "core")  # numpy 2 and numpy 1 spellings
    for module, name in (
        ("multiarray", "_reconstruct"),
        ("multiarray", "scalar"),
        ("numeric", "_frombuffer"),
    )
} | {("numpy", "ndarray"), ("numpy", "dtype")}
_ALLOWED_GLOBALS = frozenset(
    _NUMPY_GLOBALS
    | {
        (cls.__module__, cls.__qualname__)
        for cls in (Pipeline, SimpleImputer, StandardScaler, LogisticRegression)
    }
)


class _ModelUnpickler(pickle.Unpickler):
    """Resolves only the globals our pipeline pickles to: anything else (os.system, eval, ...)
    stops the load before it can be called."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"model artifact refers to {module}.{name}: not allowed")
        return super().find_class(module, name)


def model_to_bytes(model: Pipeline) -> bytes:
    """The fitted pipeline as a pickle (protocol 5); store it with `artifact_sha256(data)`.

    skops is not installed, so this is a pickle. It must only ever be loaded from our own
    artifact store, by the sha256 recorded when *this* code wrote it (never a user upload, never
    an artifact logged through the tracking API): unpickling runs code.
    """
    return pickle.dumps(model, protocol=5)


def model_from_bytes(data: bytes, *, sha256: str | None = None) -> Pipeline:
    """Load a pipeline written by `model_to_bytes`. TRUSTED INPUT ONLY (see model_to_bytes).

    When `sha256` is given the bytes are checked before anything is unpickled (ValueError on a
    mismatch). As a second line of defence, the unpickler only resolves the numpy and
    scikit-learn classes this pipeline is made of; scikit-learn warns if the artifact was written
    by another version of it (see the run's `sklearn_version` param).
    """
    if sha256 is not None and artifact_sha256(data) != sha256.lower():
        raise ValueError("model artifact does not match its recorded sha256")
    model = _ModelUnpickler(io.BytesIO(data)).load()
    if not isinstance(model, Pipeline):
        raise TypeError(f"model artifact holds a {type(model).__name__}, not a Pipeline")
    return model


def artifact_sha256(data: bytes) -> str:
    """Hex sha256 of an artifact: its content address and integrity check."""
    return hashlib.sha256(data).hexdigest()
