"""Serving metrics for /metrics, recorded by registry.serving and registry.prediction_log. Model
names are label values only once the model is known to exist, so unknown names in requests cannot
grow the series."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PREDICT_LATENCY = Histogram(
    "tradingsite_predict_latency_seconds",
    "Server-side time of a predict request (model check, online features, inference, log "
    "write, event), per model",
    ["model"],
    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0),
)
PREDICTIONS = Counter(
    "tradingsite_predictions_total",
    "Symbols answered by predict, per model and outcome (long, short, flat, no_features)",
    ["model", "outcome"],
)
MODEL_LOADS = Counter(
    "tradingsite_model_loads_total",
    "Production model loads per model and outcome (loaded, integrity_error, unservable)",
    ["model", "outcome"],
)
PREDICTION_LOG_WRITTEN = Counter(
    "tradingsite_prediction_log_written_total",
    "PredictionLog rows written by the background writer (registry.prediction_log)",
)
PREDICTION_LOG_DROPPED = Counter(
    "tradingsite_prediction_log_dropped_total",
    "PredictionLog rows never written, per reason: queue_full (the writer's queue was full), "
    "write_failed (the database refused the batch on every attempt), shutdown",
    ["reason"],
)
PREDICTION_LOG_FLUSH_SECONDS = Histogram(
    "tradingsite_prediction_log_flush_seconds",
    "Time of one background prediction log write (one COPY and its events), retries included",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
