"""Serving metrics for /metrics, recorded by registry.serving. Model names are label values only
once the model is known to exist, so unknown names in requests cannot grow the series."""

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
