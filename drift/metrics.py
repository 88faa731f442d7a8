"""Drift metrics for /metrics.

Scans run in Celery workers, and /metrics is served by the api processes. Counters are counted
where things happen (they reach /metrics when the worker shares PROMETHEUS_MULTIPROC_DIR with the
api, or when the work runs in the api process, as on-demand scans may). The severity gauge must
not depend on that: it states what the latest reports say, so it is read from the database at
scrape time by a collector. In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set) django-prometheus
exports only the per-process files, never a collector, so there the services set a `mostrecent`
gauge instead, in whichever process writes the report.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
REPORT_FEATURE = "_report"  # the `feature` label of a report's overall severity
PREDICTION_FEATURE = "_prediction"  # ... and of its prediction drift (when computed)
SEVERITY_NAME = "tradingsite_drift_severity"
SEVERITY_HELP = (
    "Severity of the latest drift report of each model's Production version: 0 NONE, 1 LOW, "
    "2 MEDIUM, 3 HIGH, per feature ('_report' = the report's overall severity, '_prediction' = "
    "the drift of its predicted probabilities)"
)

SCANS = Counter(
    "tradingsite_drift_scans_total",
    "Drift scans of one model version, by outcome (created, duplicate, locked, skipped, failed)",
    ["outcome"],
)
ALERTS = Counter(
    "tradingsite_drift_alerts_total", "Drift alerts raised, by level (alert, escalated)", ["level"]
)
SCAN_REQUESTS = Counter(
    "tradingsite_drift_scan_requests_total",
    "On-demand drift scan requests (POST /api/v1/drift/scan), by outcome "
    "(accepted, refused, rate_limited)",
    ["outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "tradingsite_drift_webhook_attempts_total",
    "Drift webhook delivery attempts, by outcome (delivered, retry, failed, refused)",
    ["outcome"],
)
# Only registered in multiprocess mode, where it is the exported series (see the docstring).
SEVERITY = Gauge(
    SEVERITY_NAME,
    SEVERITY_HELP,
    ["model", "feature"],
    multiprocess_mode="mostrecent",
    registry=REGISTRY if MULTIPROCESS else None,
)


def severity_samples() -> Iterator[tuple[str, str, int]]:
    """(model, feature, severity rank) of the latest report of every Production version."""
    from drift.selectors import latest_production_reports

    for report in latest_production_reports(with_features=True):
        model = report.model_version.model.name
        yield model, REPORT_FEATURE, _rank(report.severity)
        if report.prediction_severity:
            yield model, PREDICTION_FEATURE, _rank(report.prediction_severity)
        for feature in report.features.all():
            yield model, feature.name, _rank(feature.severity)


def record_report(*, model: str, severities: Iterable[tuple[str, str]]) -> None:
    """Set the multiprocess gauge from a new report: (feature, severity) pairs, the report's
    own under REPORT_FEATURE. Without multiprocess mode the collector reads the database."""
    if MULTIPROCESS:
        for feature, severity in severities:
            SEVERITY.labels(model=model, feature=feature).set(_rank(severity))


class DriftSeverityCollector:
    """tradingsite_drift_severity from the database, at scrape time (single-process exposition)."""

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(SEVERITY_NAME, SEVERITY_HELP, labels=["model", "feature"])]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(SEVERITY_NAME, SEVERITY_HELP, labels=["model", "feature"])
        try:
            for model, feature, rank in severity_samples():
                family.add_metric([model, feature], rank)
        except Exception as exc:  # the database is down: /metrics still answers
            logger.warning("drift severity not collected: %s", exc)
        yield family


def collector_register() -> None:
    """Called once from DriftConfig.ready()."""
    if not MULTIPROCESS and not getattr(collector_register, "done", False):
        REGISTRY.register(DriftSeverityCollector())  # type: ignore[arg-type]
        collector_register.done = True  # type: ignore[attr-defined]


def _rank(severity: Any) -> int:
    from drift.models import SEVERITY_RANK

    return SEVERITY_RANK.get(str(severity), 0)
