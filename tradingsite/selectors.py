"""Cross-app reads: the ML layer status that the API, the home page and the banner show."""

from __future__ import annotations

from drift.selectors import drift_monitor_state
from experiments.selectors import experiment_tracker_counts
from features.selectors import feature_store_counts
from registry.selectors import registry_counts


def ml_status() -> dict[str, dict]:
    return {
        "features": feature_store_counts(),
        "registry": registry_counts(),
        "drift_monitor": drift_monitor_state(),
        "experiments": experiment_tracker_counts(),
    }
