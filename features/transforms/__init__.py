"""Pure feature transforms (pandas/numpy, no Django): bars in, one float64 column per feature out.

Services load bars through a selector, call `compute_features`, and save the frame; this package
never touches the database, so its tests run without one.
"""

from features.transforms.indicators import INDICATORS
from features.transforms.panel import BAR_COLUMNS, BarPanel, sort_bars
from features.transforms.registry import (
    CORE_TECHNICAL,
    FEATURE_SPECS,
    SMOOTHING_SETTLE_BARS,
    FeatureSpec,
    compute_features,
    max_warmup_bars,
)

__all__ = [
    "BAR_COLUMNS",
    "CORE_TECHNICAL",
    "FEATURE_SPECS",
    "INDICATORS",
    "SMOOTHING_SETTLE_BARS",
    "BarPanel",
    "FeatureSpec",
    "compute_features",
    "max_warmup_bars",
    "sort_bars",
]
