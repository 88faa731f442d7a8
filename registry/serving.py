"""Model serving: the Production version of a registered model applied to the online features of
the feature view version it was trained on, every prediction logged for drift monitoring.

Loading. Each process keeps the loaded model of each registered model name. Every request asks
the database which version is in Production (one indexed query: the unique model name and the
partial unique index of the Production version), so once a promotion or a rollback commits, the
next request in every process serves the new version; there is no invalidation to miss. When that
version is not the one held, the artifact blob is read, its sha256 checked against the version's
recorded hash and parsed by `model_from_bytes` (our JSON format: loading runs no code; a pickle or
any other upload is refused as not a model document, never unpickled). A model that fails any
check is refused with a 409 and an ERROR log line, and nothing is cached: the next request tries
again, and no older or unverified model is served in its place. One lock per model name makes
concurrent requests on the request thread pool load a new version once.

Predicting. The online store answers per symbol with the newest values and their bar time
(`features.store.online_features`, keyed by the view version, so a model trained on v1 reads v1
even after v2 is registered), flagged stale when older than the view's ttl. With the online
store down (its circuit breaker open, or Redis failing), the newest offline-store rows answer
instead. The model computes P(up) in numpy; `experiments.training.positions_from_proba` turns
it into the signal exactly as training scored the out-of-fold predictions. A symbol with no
online features gets an error entry of its own (the others are still served). The rows of a
request go to `PredictionLog` and are announced by `predictions.served` events through
`registry.prediction_log`: by a background writer in batches (PREDICTION_LOG_MODE=background,
production), or before the request answers (sync).

Warm-up. With PREDICTION_WARMUP on, a server process loads every Production version in a
background thread as it starts (`serving_warmup_start`, from RegistryConfig.ready), so the first
request pays neither the scikit-learn imports nor a model load. In a pre-fork master (gunicorn
--preload) a fork waits for the warm-up to end, so the workers start with the models loaded.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, connection, connections
from django.utils import timezone

from experiments.storage import blob_path
from features.models import FeatureView
from features.store import online_features_resilient
from registry.errors import (
    ArtifactIntegrityError,
    ModelNotFound,
    ModelUnservable,
    NoProductionVersion,
    RegistryError,
)
from registry.metrics import MODEL_LOADS, PREDICT_LATENCY, PREDICTIONS
from registry.models import MAX_MODEL_BYTES, ModelVersion, RegisteredModel, Signal, Stage
from registry.prediction_log import ServedPredictions, prediction_log_record

if TYPE_CHECKING:
    from experiments.training.artifacts import LogisticPipelineModel

logger = logging.getLogger(__name__)

MAX_PREDICT_SYMBOLS = 100
# A model document is a few kilobytes of JSON; anything far larger is not one of ours, and is
# refused before it is read into memory.
SIGNAL_OF_POSITION = {1.0: Signal.LONG, -1.0: Signal.SHORT, 0.0: Signal.FLAT}
NO_FEATURES = "no_features"


@dataclass(frozen=True)
class LoadedModel:
    """A verified, parsed Production model and what serving it needs."""

    version_id: int
    model_name: str
    version: int
    sha256: str
    view: FeatureView
    feature_names: tuple[str, ...]
    model: LogisticPipelineModel
    loaded_at: datetime = field(default_factory=timezone.now)


_loaded: dict[str, LoadedModel] = {}
_load_locks: dict[str, threading.Lock] = {}
_load_locks_guard = threading.Lock()


def serving_cache_clear() -> None:
    """Forget every loaded model (tests; the next request loads again)."""
    _loaded.clear()


def serving_cache_snapshot() -> dict[str, tuple[int, str]]:
    """Which version (number, sha256) this process holds per model name."""
    return {name: (m.version, m.sha256) for name, m in _loaded.items()}


def _training() -> ModuleType:
    """`experiments.training`, imported on first use: it brings scikit-learn, seconds of imports
    that the URLconf (loaded by a process's first request, `/health` included) should not pay."""
    from experiments import training

    return training


def _load_lock(name: str) -> threading.Lock:
    with _load_locks_guard:
        return _load_locks.setdefault(name, threading.Lock())


# The hot path's one query, written out: the ORM would spend more compiling it than PostgreSQL
# spends answering (the unique name index, then the partial unique index of Production).
_PRODUCTION_SQL = (
    "SELECT v.id, v.artifact_sha256, v.feature_view_id FROM {versions} v "
    "INNER JOIN {models} m ON m.id = v.model_id WHERE m.name = %s AND v.stage = %s"
)


def _production_row(name: str) -> tuple[int, str, int | None] | None:
    """(pk, artifact sha256, feature view id) of `name`'s Production version, if any."""
    sql = _PRODUCTION_SQL.format(
        versions=connection.ops.quote_name(ModelVersion._meta.db_table),
        models=connection.ops.quote_name(RegisteredModel._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [name, Stage.PRODUCTION.value])
        return cursor.fetchone()


def _holds(held: LoadedModel, row: tuple[int, str, int | None]) -> bool:
    return (held.version_id, held.sha256, held.view.pk) == row


def served_model(name: str) -> LoadedModel:
    """The verified model of `name`'s current Production version, loaded at most once per
    version and process. Raises ModelNotFound, NoProductionVersion, ArtifactIntegrityError or
    ModelUnservable (nothing is cached then)."""
    row = _production_row(name)
    if row is None:
        if not RegisteredModel.objects.filter(name=name).exists():
            raise ModelNotFound(f"no registered model {name!r}")
        raise NoProductionVersion(f"{name} has no version in Production: nothing to serve")
    held = _loaded.get(name)
    if held is not None and _holds(held, row):
        return held
    with _load_lock(name):
        held = _loaded.get(name)  # another request thread may have loaded it meanwhile
        if held is not None and _holds(held, row):
            return held
        loaded = load_version(row[0])
        _loaded[name] = loaded
        return loaded


def _refuse(version: ModelVersion, error: RegistryError, outcome: str) -> RegistryError:
    MODEL_LOADS.labels(model=version.model.name, outcome=outcome).inc()
    logger.error(
        "refusing to serve %s v%s (artifact %s): %s",
        version.model.name,
        version.version,
        version.artifact_sha256,
        error,
    )
    return error


def load_version(pk: int) -> LoadedModel:
    """Model version `pk`'s model, its artifact's sha256 and format verified; not cached (the
    served model is, through served_model). RegistryError (logged, counted) says why not."""
    version = ModelVersion.objects.select_related("model", "feature_view").get(pk=pk)
    label = f"{version.model.name} v{version.version}"
    view = version.feature_view
    if view is None:
        raise _refuse(
            version,
            ModelUnservable(f"{label} records no feature view, so its inputs are unknown"),
            "unservable",
        )
    try:
        path = blob_path(version.artifact_sha256)
        size = path.stat().st_size
    except (OSError, ValueError):
        error = ArtifactIntegrityError(
            f"{label}: the model artifact {version.artifact_sha256!r} is missing from the "
            "artifact store; it is not served"
        )
        raise _refuse(version, error, "integrity_error") from None
    if size > MAX_MODEL_BYTES:
        error = ModelUnservable(f"{label}: the artifact ({size} bytes) is not a model document")
        raise _refuse(version, error, "unservable")
    data = path.read_bytes()
    training = _training()
    if training.artifact_sha256(data) != version.artifact_sha256:
        error = ArtifactIntegrityError(
            f"{label}: the model artifact does not hash to its recorded sha256 "
            f"{version.artifact_sha256}; it is not served"
        )
        raise _refuse(version, error, "integrity_error")
    try:
        model = training.model_from_bytes(data, sha256=version.artifact_sha256)
    except ValueError as exc:  # not JSON (a pickle, say), another format, bad arrays
        raise _refuse(
            version, ModelUnservable(f"{label}: not a servable model: {exc}"), "unservable"
        ) from None
    names = tuple(view.feature_names)
    if model.feature_names is not None and tuple(model.feature_names) != names:
        error = ModelUnservable(
            f"{label} was trained on features {list(model.feature_names)}, but its feature "
            f"view {view.name} v{view.version} has {list(names)}"
        )
        raise _refuse(version, error, "unservable")
    if model.n_features != len(names):
        error = ModelUnservable(
            f"{label} takes {model.n_features} features; {view.name} v{view.version} has "
            f"{len(names)}"
        )
        raise _refuse(version, error, "unservable")
    MODEL_LOADS.labels(model=version.model.name, outcome="loaded").inc()
    logger.info(
        "loaded %s (artifact %s, feature view %s v%s)",
        label,
        version.artifact_sha256,
        view.name,
        view.version,
    )
    return LoadedModel(
        version_id=version.pk,
        model_name=version.model.name,
        version=version.version,
        sha256=version.artifact_sha256,
        view=view,
        feature_names=names,
        model=model,
    )


# --- warm-up ------------------------------------------------------------------------------------

# A pre-fork master waits this long at most for its warm-up before it forks a worker.
WARMUP_FORK_WAIT_SECONDS = 60.0
_warmup: dict[str, threading.Thread | None] = {"thread": None}


def serving_warmup() -> list[str]:
    """Load every Production version into this process, so that the first request of each model
    pays no scikit-learn import and no model load. Returns the names loaded; a model that fails
    its checks is skipped (logged by `_refuse`), and its requests get the 409."""
    _training()
    names = RegisteredModel.objects.filter(versions__stage=Stage.PRODUCTION).values_list(
        "name", flat=True
    )
    loaded = []
    for name in sorted(names):
        try:
            served_model(name)
        except RegistryError:
            continue
        loaded.append(name)
    return loaded


def serving_warmup_start() -> threading.Thread:
    """Run `serving_warmup` in a daemon thread, with a database connection of its own that is
    closed when it ends."""
    thread = threading.Thread(target=_warmup_thread, name="prediction-warmup", daemon=True)
    _warmup["thread"] = thread
    thread.start()
    return thread


def _warmup_thread() -> None:
    started = time.perf_counter()
    try:
        loaded = serving_warmup()
    except DatabaseError as exc:  # not migrated yet, database down: requests load on demand
        logger.warning("prediction warm-up skipped: %s", exc)
        return
    except Exception:  # a warm-up failure must not take the server down with it
        logger.exception("prediction warm-up failed; models load on their first request")
        return
    finally:
        connections.close_all()
    logger.info(
        "prediction warm-up: %d Production model(s) loaded in %.1f s: %s",
        len(loaded),
        time.perf_counter() - started,
        ", ".join(loaded) or "none",
    )


def _before_fork() -> None:
    # A worker forked while the warm-up runs would start without its models, and with a copy
    # of whatever lock the warm-up thread held; waiting hands it the loaded models instead.
    thread = _warmup["thread"]
    if thread is not None and thread.is_alive():
        thread.join(WARMUP_FORK_WAIT_SECONDS)


def _after_fork_in_child() -> None:
    # The child has one thread: locks copied while another thread of the parent held them
    # would never be released.
    global _load_locks_guard
    _load_locks_guard = threading.Lock()
    _load_locks.clear()
    _warmup["thread"] = None


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


@dataclass(frozen=True)
class PredictionBatch:
    """What one predict request answered: entries in the order the symbols were given."""

    served: LoadedModel
    entries: list[dict[str, Any]]
    latency_ms: float

    def as_dict(self, *, request_id: str) -> dict[str, Any]:
        view = self.served.view
        return {
            "model": self.served.model_name,
            "version": self.served.version,
            "feature_view": {"name": view.name, "version": view.version},
            "request_id": request_id,
            "latency_ms": round(self.latency_ms, 3),
            "predictions": self.entries,
        }


def _feature_matrix(rows: list[dict[str, Any]], names: tuple[str, ...]) -> np.ndarray:
    """Online values in the view's feature order, NaN where the store holds no value."""
    matrix = np.array(
        [[row["values"].get(n) for n in names] for row in rows], dtype=float
    )  # None -> nan
    return matrix.reshape(len(rows), len(names))


def _latest_rows(view: FeatureView, symbols: list[str]) -> list[dict[str, Any]]:
    """The online store's answer, or with the cache (Redis) down the offline store's newest
    rows in the same shape (features.store.online_features_resilient)."""
    return online_features_resilient(view=view, symbols=symbols)


def predict(
    *,
    model_name: str,
    symbols: list[str],
    user: AbstractBaseUser | AnonymousUser | None = None,
    request_id: str = "",
) -> PredictionBatch:
    """Predict each symbol's next-bar direction with `model_name`'s Production version.

    Per symbol: signal (long/short/flat), P(up), the bar time of the features and whether they
    are stale; or, with no online features, an error entry. The predictions are handed to the
    prediction log (`registry.prediction_log`: written in the background, or before this
    returns in sync mode), which announces them with `predictions.served` events."""
    started = time.perf_counter()
    served = served_model(model_name)
    rows = _latest_rows(served.view, symbols)
    with_values = [row for row in rows if row["values"] is not None]
    matrix = _feature_matrix(with_values, served.feature_names)
    # A row with every value missing is no input at all (training drops such rows too).
    usable = ~np.isnan(matrix).all(axis=1)
    present = [row for row, ok in zip(with_values, usable.tolist(), strict=True) if ok]
    matrix = matrix[usable]
    proba = served.model.predict_proba(matrix)[:, 1] if present else np.empty(0)
    signals = [
        SIGNAL_OF_POSITION[p].value for p in _training().positions_from_proba(proba).tolist()
    ]
    predicted_ms = (time.perf_counter() - started) * 1000

    probabilities = proba.tolist()
    by_symbol = _entries(served, present, probabilities, signals, symbols)
    missing = [symbol for symbol in symbols if by_symbol[symbol]["error"] is not None]
    now = timezone.now()
    requested_by = user.pk if user is not None and user.is_authenticated else None
    logs = [
        (
            served.version_id,
            row["symbol"],
            datetime.fromisoformat(row["ts"]),
            features,
            p,
            signal,
            row["stale"],
            predicted_ms,
            request_id,
            requested_by,
            now,
        )  # fmt: skip
        for row, features, p, signal in zip(
            present, matrix.tolist(), probabilities, signals, strict=True
        )
    ]
    counts = Counter(signals)
    view = served.view
    prediction_log_record(
        ServedPredictions(
            model_name=served.model_name,
            version=served.version,
            feature_view=f"{view.name}:v{view.version}",
            rows=logs,
            symbols=len(symbols),
            signals=counts,
            stale=sum(1 for row in present if row["stale"]),
            missing=missing,
            latency_ms=predicted_ms,
            request_id=request_id,
            served_at=now,
        )
    )
    latency_s = time.perf_counter() - started
    PREDICT_LATENCY.labels(model=served.model_name).observe(latency_s)
    for outcome, count in counts.items():
        PREDICTIONS.labels(model=served.model_name, outcome=outcome).inc(count)
    if missing:
        PREDICTIONS.labels(model=served.model_name, outcome=NO_FEATURES).inc(len(missing))
    entries = [by_symbol[symbol] for symbol in symbols]
    return PredictionBatch(served=served, entries=entries, latency_ms=latency_s * 1000)


def _entries(
    served: LoadedModel,
    present: list[dict[str, Any]],
    probabilities: list[float],
    signals: list[str],
    symbols: list[str],
) -> dict[str, dict[str, Any]]:
    """The answer per symbol: the prediction, or the no_features error entry."""
    by_symbol: dict[str, dict[str, Any]] = {
        row["symbol"]: {
            "symbol": row["symbol"],
            "signal": signal,
            "probability": p,
            "as_of": row["ts"],
            "stale": row["stale"],
            "error": None,
        }
        for row, p, signal in zip(present, probabilities, signals, strict=True)
    }
    view = served.view
    for symbol in symbols:
        if symbol not in by_symbol:
            by_symbol[symbol] = {
                "symbol": symbol,
                "signal": None,
                "probability": None,
                "as_of": None,
                "stale": None,
                "error": NO_FEATURES,
                "detail": f"no online features for {symbol} in {view.name} v{view.version}",
            }
    return by_symbol
