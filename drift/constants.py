"""Drift constants shared by the pure modules, the services and the API (no imports: the API
must not load numpy or scipy to name them)."""

# The name prediction drift (the predicted P(up)) is graded under, like a feature's: its
# threshold overrides go under thresholds["features"]["prediction"].
PREDICTION = "prediction"

# The statistics a DriftFeatureResult holds in indexed columns (each result's full dict of
# drift.statistics goes to its `statistics` JSON): what reports, filters and charts read.
FEATURE_COLUMNS = (
    "psi",
    "ks_statistic",
    "p_value_corrected",
    "wasserstein_normed",
    "jensen_shannon",
)
