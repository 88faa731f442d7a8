"""Walk-forward training (pure): the folds, the out-of-fold signal and the final model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from drift.reference import reference_statistics
from experiments.training.artifacts import build_model
from experiments.training.common import FOLD_METRICS, FWD_RETURN, LABEL
from experiments.training.labels import walk_forward_splits
from experiments.training.metrics import (
    classification_metrics,
    positions_from_proba,
    trading_metrics,
)

# --- walk-forward training ------------------------------------------------------------------


@dataclass(kw_only=True)
class TrainingResult:
    """What a walk-forward run produced; `flat_metrics()` is what the run logs as metrics.

    `folds` holds one dict per fold (fold number from 1, n_train, n_test, train_start/train_end,
    test_start/test_end as ISO strings, and the FOLD_METRICS); `metrics` the classification
    metrics and `trading` the trading metrics of all out-of-fold predictions pooled;
    `predictions` the out-of-fold rows (symbol, ts, fold, proba, position, label, fwd_return);
    `training_rows` the rows the final `model` was refit on (features as given, NaN kept).
    """

    params: dict[str, Any]
    folds: list[dict[str, Any]]
    metrics: dict[str, float]
    trading: dict[str, float]
    feature_names: tuple[str, ...]
    n_rows: int
    n_rows_imputed: int  # rows with at least one missing feature, filled by the median imputer
    n_rows_dropped: int  # rows with every feature missing: not trained on
    model: Pipeline = field(repr=False)
    predictions: pd.DataFrame = field(repr=False)
    training_rows: pd.DataFrame = field(repr=False)

    def flat_metrics(self) -> dict[str, float]:
        """Overall metrics ("accuracy", "sharpe", ...) and per fold ("fold_1/accuracy", ...)."""
        flat = {**self.metrics, **self.trading}
        flat.update(
            n_rows=self.n_rows,
            n_rows_imputed=self.n_rows_imputed,
            n_rows_dropped=self.n_rows_dropped,
        )
        for fold in self.folds:
            for key in ("n_train", "n_test", *FOLD_METRICS):
                flat[f"fold_{fold['fold']}/{key}"] = fold[key]
        return {key: float(value) for key, value in flat.items()}

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(up) of the final model for each row of `frame` (which has the feature columns)."""
        return self.model.predict_proba(_feature_matrix(frame, self.feature_names))[:, 1]

    def reference_statistics(
        self, *, bins: int = 10, sample_size: int = 5000, seed: int = 0
    ) -> dict[str, Any]:
        """Reference statistics of the training features and of the final model's (in-sample)
        predictions on them: what the drift monitor compares production with."""
        proba = self.predict_proba(self.training_rows)
        return reference_statistics(
            self.training_rows,
            self.feature_names,
            proba,
            series=self.training_rows["symbol"].to_numpy(),  # rows are in time order per symbol
            bins=bins,
            sample_size=sample_size,
            seed=seed,
        )


def train_walk_forward(
    features: pd.DataFrame,
    feature_names: Sequence[str],
    *,
    model_params: Mapping[str, Any] | None = None,
    n_folds: int = 5,
    min_train: int | float = 0.5,
    gap: int = 0,
    periods_per_year: float = 252.0,
    long_only: bool = False,
) -> TrainingResult:
    """Walk-forward validation of `build_model(model_params)`, then a refit on every row.

    `features` has symbol, ts, label (0/1), fwd_return and the `feature_names` columns, e.g.
    `training_set_build(view=..., entities=next_bar_labels(bars))`; other columns are ignored.
    Missing values: a row whose features are ALL missing (no feature row in the point-in-time
    window) is dropped and counted in n_rows_dropped; other missing or infinite values are
    filled with the median of the fold's training rows (so the test window never informs the
    fill) and the rows counted in n_rows_imputed. Folds: `walk_forward_splits`; each fold's
    model sees only rows before its test window.
    """
    names = tuple(feature_names)
    rows, n_dropped = _training_rows(features, names)
    x, y = _feature_matrix(rows, names), rows[LABEL].to_numpy(dtype=int)
    splits = walk_forward_splits(rows["ts"], n_folds, min_train, gap)
    template = build_model(model_params)
    folds, oof = [], []
    for number, (train, test) in enumerate(splits, start=1):
        model = _fit(template, x.iloc[train], y[train], f"fold {number}")
        proba = model.predict_proba(x.iloc[test])[:, 1]
        oof.append(_oof_frame(rows.iloc[test], proba, number, long_only))
        folds.append(_fold_record(number, rows, train, test, oof[-1], periods_per_year))
    predictions = pd.concat(oof, ignore_index=True)
    params = _params(template, names, n_folds, min_train, gap, periods_per_year, long_only)
    return TrainingResult(
        params=params,
        folds=folds,
        metrics=classification_metrics(predictions[LABEL], predictions["proba"]),
        trading=_signal_metrics(predictions, periods_per_year),
        feature_names=names,
        n_rows=len(rows),
        n_rows_imputed=int(x.isna().any(axis=1).sum()),
        n_rows_dropped=n_dropped,
        model=_fit(template, x, y, "the final refit"),
        predictions=predictions,
        training_rows=rows,
    )


def _training_rows(features: pd.DataFrame, names: tuple[str, ...]) -> tuple[pd.DataFrame, int]:
    """Rows sorted by (ts, symbol), non-finite features as NaN, all-missing rows dropped."""
    if not names:
        raise ValueError("feature_names is empty")
    missing = [c for c in ("symbol", "ts", LABEL, FWD_RETURN, *names) if c not in features.columns]
    if missing:
        raise ValueError(f"training rows lack column(s): {', '.join(missing)}")
    labels = features[LABEL]
    if labels.isna().any() or not labels.isin([0, 1]).all():
        raise ValueError("label must be 0 or 1 on every row (see next_bar_labels)")
    if not np.isfinite(features[FWD_RETURN].to_numpy(dtype=float)).all():
        raise ValueError("fwd_return must be finite on every row (see next_bar_labels)")
    matrix = features[list(names)].to_numpy(dtype=float, copy=True)
    matrix[~np.isfinite(matrix)] = np.nan
    rows = features[["symbol", "ts", LABEL, FWD_RETURN]].assign(
        **dict(zip(names, matrix.T, strict=True))
    )
    keep = ~np.isnan(matrix).all(axis=1)
    rows = rows[keep].sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
    if rows.duplicated(["symbol", "ts"]).any():
        raise ValueError("two training rows share one (symbol, ts)")
    return rows, int((~keep).sum())


def _feature_matrix(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The model's input: float64 columns named and ordered as in training (sklearn checks),
    ±inf as missing."""
    return frame[list(names)].astype("float64").replace([np.inf, -np.inf], np.nan)


def _fit(template: Pipeline, x: pd.DataFrame, y: np.ndarray, what: str) -> Pipeline:
    if len(np.unique(y)) < 2:
        raise ValueError(f"{what}: the training rows hold a single class, nothing to learn")
    return clone(template).fit(x, y)


def _oof_frame(rows: pd.DataFrame, proba: np.ndarray, fold: int, long_only: bool) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": rows["symbol"].array,
            "ts": rows["ts"].array,
            "fold": fold,
            "proba": proba,
            "position": positions_from_proba(proba, long_only=long_only),
            LABEL: rows[LABEL].to_numpy(dtype=int),
            FWD_RETURN: rows[FWD_RETURN].to_numpy(dtype=float),
        }
    )


def _signal_metrics(predictions: pd.DataFrame, periods_per_year: float) -> dict[str, float]:
    return trading_metrics(
        predictions["position"],
        predictions[FWD_RETURN],
        predictions["ts"],
        symbols=predictions["symbol"],
        periods_per_year=periods_per_year,
    )


def _fold_record(
    number: int,
    rows: pd.DataFrame,
    train: np.ndarray,
    test: np.ndarray,
    oof: pd.DataFrame,
    periods_per_year: float,
) -> dict[str, Any]:
    ts = rows["ts"]
    return {
        "fold": number,
        "n_train": len(train),
        "n_test": len(test),
        "train_start": _iso(ts.iloc[train[0]]),
        "train_end": _iso(ts.iloc[train[-1]]),
        "test_start": _iso(ts.iloc[test[0]]),
        "test_end": _iso(ts.iloc[test[-1]]),
        **classification_metrics(oof[LABEL], oof["proba"]),
        **_signal_metrics(oof, periods_per_year),
    }


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _params(
    template: Pipeline,
    names: tuple[str, ...],
    n_folds: int,
    min_train: int | float,
    gap: int,
    periods_per_year: float,
    long_only: bool,
) -> dict[str, Any]:
    """Flat, JSON-scalar params for the run (every key is one MLflow param)."""
    classifier = template.named_steps["classifier"].get_params()
    return {
        "model": "SimpleImputer(median) > StandardScaler > LogisticRegression",
        **{f"model.{k}": v for k, v in sorted(classifier.items()) if v != "deprecated"},
        "label": "next_bar_up: next close > close",
        "position_rule": "long P>0.5, flat P=0.5, " + ("flat" if long_only else "short") + " P<0.5",
        "cv": "walk_forward_expanding",
        "cv.n_folds": n_folds,
        "cv.min_train": min_train,
        "cv.gap": gap,
        "periods_per_year": periods_per_year,
        "features": ",".join(names),
        "n_features": len(names),
        "sklearn_version": sklearn.__version__,
    }
