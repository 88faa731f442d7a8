"""Limits and names of the experiment tracker; MLflow's where we speak its protocol."""

from __future__ import annotations

import re

# mlflow/utils/validation.py: the official client checks these too, the server is the authority.
MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_RUN_NAME_LENGTH = 250
MAX_USER_NAME_LENGTH = 256
MAX_SOURCE_LENGTH = 500

# MLflow's log_batch limits (1,000 metrics, 100 params, 100 tags, 1,000 entities, 1 MB).
MLFLOW_MAX_BATCH_METRICS = 1000
MLFLOW_MAX_BATCH_PARAMS = 100
MLFLOW_MAX_BATCH_TAGS = 100
MLFLOW_MAX_BATCH_ENTITIES = 1000
MLFLOW_MAX_BATCH_BYTES = 1_000_000

# The native batch API takes bigger batches: fewer round trips per metric logged.
NATIVE_MAX_BATCH_METRICS = 10_000
NATIVE_MAX_BATCH_PARAMS = 1000
NATIVE_MAX_BATCH_TAGS = 1000

# search_runs / search_experiments pages (MLflow: default 1,000, at most 50,000).
SEARCH_DEFAULT_RESULTS = 1000
SEARCH_MAX_RESULTS = 50_000
NATIVE_MAX_PAGE_SIZE = 1000
METRIC_HISTORY_DEFAULT_PAGE = 10_000
METRIC_HISTORY_MAX_PAGE = 100_000

# Run comparison: a bounded number of runs, and of history rows read to align them by step.
COMPARE_MAX_RUNS = 25
COMPARE_MAX_HISTORY_ROWS = 200_000

# Metric values MLflow's SQL store writes for ±inf (SQL cannot hold infinities).
FLOAT_MAX = 1.7976931348623157e308
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Names of params, metrics and tags (MLflow: "alphanumerics, underscores, dashes, periods,
# spaces, colons and slashes").
ENTITY_KEY_PATTERN = re.compile(r"^[/\w.\- :]*$")

# Artifact names: path segments of a strict alphabet, joined by "/" (reliability.md, T14). A
# segment may not be "." or "..", so no name can leave its run's folder, and "%", "\\", ";",
# "#" and NUL never pass, so no decoding trick can smuggle one in.
ARTIFACT_SEGMENT_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
ARTIFACT_MAX_DEPTH = 16
ARTIFACT_MAX_PATH_LENGTH = 1024

# The tags MLflow's client sets and the run's columns mirror.
TAG_RUN_NAME = "mlflow.runName"
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_USER = "mlflow.user"
TAG_SOURCE_NAME = "mlflow.source.name"

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
MLFLOW_ARTIFACTS_SCHEME = "mlflow-artifacts:"

# Who may write (reads need a login only). The researcher role holds them all; the /api/v1 views
# and the MLflow endpoints name which one each write needs. Restoring is undoing a delete, and
# everything logged under a run (params, metrics, tags, artifacts, its status) changes the run.
ADD_EXPERIMENT_PERMISSION = "experiments.add_experiment"
CHANGE_EXPERIMENT_PERMISSION = "experiments.change_experiment"
DELETE_EXPERIMENT_PERMISSION = "experiments.delete_experiment"
ADD_RUN_PERMISSION = "experiments.add_run"
CHANGE_RUN_PERMISSION = "experiments.change_run"
DELETE_RUN_PERMISSION = "experiments.delete_run"
TRACKING_PERMISSIONS = (
    ADD_EXPERIMENT_PERMISSION,
    CHANGE_EXPERIMENT_PERMISSION,
    DELETE_EXPERIMENT_PERMISSION,
    ADD_RUN_PERMISSION,
    CHANGE_RUN_PERMISSION,
    DELETE_RUN_PERMISSION,
)
