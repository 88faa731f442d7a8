"""Drift constants shared by the pure modules, the services and the API (no imports: the API
must not load numpy or scipy to name them)."""

# The name prediction drift (the predicted P(up)) is graded under, like a feature's: its
# threshold overrides go under thresholds["features"]["prediction"].
PREDICTION = "prediction"
