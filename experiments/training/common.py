"""Names and small helpers shared by the training modules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

LABEL = "label"
FWD_RETURN = "fwd_return"
# lbfgs is deterministic; random_state is recorded anyway so a switch of solver stays reproducible.
DEFAULT_MODEL_PARAMS: dict[str, Any] = {"C": 1.0, "max_iter": 1000, "tol": 1e-4, "random_state": 0}
FOLD_METRICS = ("accuracy", "roc_auc", "log_loss", "sharpe", "max_drawdown", "hit_rate", "turnover")


def check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def factorize(values: object, name: str) -> tuple[np.ndarray, pd.Index]:
    """Codes 0..k-1 in sorted order of the unique values; missing values are an error."""
    codes, uniques = pd.factorize(pd.Series(values), sort=True)
    if len(codes) == 0:
        raise ValueError(f"{name} is empty")
    if (codes < 0).any():
        raise ValueError(f"{name} has {int((codes < 0).sum())} missing value(s)")
    return codes, pd.Index(uniques)
