"""Drift services (writes): scans, reports, alerts. Split by concern; import from here."""

from drift.services.alerts import drift_alert_raise
from drift.services.predictions import PredictionDrift, prediction_drift
from drift.services.reports import VersionScan, drift_scan_version, report_payload
from drift.services.scans import (
    NO_MODELS,
    DriftScanRequestError,
    WindowLocked,
    drift_scan_all,
    drift_scan_create,
    drift_scan_record,
    drift_scan_request,
    drift_scan_schedule,
    drift_scan_targets,
)
from drift.services.windows import WINDOW_SOURCES, DriftScanError, Window, current_window

__all__ = [
    "NO_MODELS",
    "WINDOW_SOURCES",
    "DriftScanError",
    "DriftScanRequestError",
    "PredictionDrift",
    "VersionScan",
    "Window",
    "WindowLocked",
    "current_window",
    "drift_alert_raise",
    "drift_scan_all",
    "drift_scan_create",
    "drift_scan_record",
    "drift_scan_request",
    "drift_scan_schedule",
    "drift_scan_targets",
    "drift_scan_version",
    "prediction_drift",
    "report_payload",
]
