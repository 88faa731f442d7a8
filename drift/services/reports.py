"""One version's drift report for its current window: load → compute → save, at most once.

The Redis lock keeps a second worker from computing a window that is being computed; the unique
constraint on (model_version, window_start) is the fence, and losing to it is a no-op. The report,
its feature results, its prediction drift, its events and its webhook deliveries commit in one
transaction: a worker killed half-way leaves nothing behind, and the window is scanned again by
the retry. The report's severity is the higher of the features' and the prediction drift's
(drift.severity.overall_severity).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from drift.constants import FEATURE_COLUMNS
from drift.metrics import PREDICTION_FEATURE, REPORT_FEATURE, SCANS, record_report
from drift.models import DriftFeatureResult, DriftReport, DriftScan, DriftScanItem, Severity
from drift.selectors import drift_thresholds_for
from drift.services.alerts import drift_alert_raise
from drift.services.locks import scan_lock
from drift.services.predictions import PredictionDrift, prediction_drift
from drift.services.windows import DriftScanError, Window, current_window
from drift.severity import DriftReport as StatisticsReport
from drift.severity import overall_severity
from drift.statistics import DriftOptions, drift_statistics
from registry.models import ModelVersion
from tradingsite.events import event_publish

logger = logging.getLogger(__name__)
Outcome = DriftScanItem.Outcome


@dataclass(frozen=True)
class VersionScan:
    outcome: str  # DriftScanItem.Outcome
    report: DriftReport | None
    detail: str = ""

    @property
    def created(self) -> bool:
        return self.outcome == Outcome.CREATED


def drift_scan_version(version: ModelVersion, *, scan: DriftScan | None = None) -> VersionScan:
    """The version's report for its current window: created now, or already there (another
    worker, a second scheduler, an earlier scan), or being created by another worker (LOCKED).
    Raises DriftScanError when the version cannot be scanned."""
    if not version.reference_statistics:
        raise DriftScanError("no reference statistics stored with the version")
    window = current_window(version)
    if done := _already_reported(version, window, scan):
        return done
    with scan_lock(version.pk, window.start) as held:
        if held is False:
            SCANS.labels(outcome=Outcome.LOCKED).inc()
            return VersionScan(Outcome.LOCKED, None, "window being reported by another worker")
        if done := _already_reported(version, window, scan):  # finished while we waited
            return done
        result, prediction = _statistics(version, window)
        try:
            report = _report_store(
                version=version, window=window, result=result, prediction=prediction, scan=scan
            )
        except IntegrityError:
            # The fence: another worker wrote this window first (its lease had lapsed, or no
            # lock store was reachable). Not an error: its report stands.
            if done := _already_reported(version, window, scan):
                return done
            raise
    return VersionScan(Outcome.CREATED, report, "")


def _already_reported(
    version: ModelVersion, window: Window, scan: DriftScan | None
) -> VersionScan | None:
    report = DriftReport.objects.filter(model_version=version, window_start=window.start).first()
    if report is None:
        return None
    if scan is not None and report.scan_id == scan.pk:  # this scan wrote it, then was retried
        return VersionScan(Outcome.CREATED, report, "")
    SCANS.labels(outcome=Outcome.DUPLICATE).inc()
    return VersionScan(Outcome.DUPLICATE, report, "window already reported")


def _statistics(version: ModelVersion, window: Window) -> tuple[StatisticsReport, PredictionDrift]:
    """The features' drift (a reference that does not fit the view fails the scan) and the
    prediction drift (which, when it cannot be computed, only says why)."""
    view = version.feature_view
    options = DriftOptions(thresholds=drift_thresholds_for(view=view))
    try:
        result = drift_statistics(
            version.reference_statistics,
            window.matrix,
            list(view.feature_names),
            options=options,
            current_series=window.series,
        )
    except ValueError as exc:  # a reference that does not fit the view, bad thresholds
        raise DriftScanError(f"cannot compare with the reference: {exc}") from exc
    return result, prediction_drift(version=version, window=window, options=options)


def _report_store(
    *,
    version: ModelVersion,
    window: Window,
    result: StatisticsReport,
    prediction: PredictionDrift,
    scan: DriftScan | None,
) -> DriftReport:
    """Write the report, its features, its prediction drift, its events and alerts in one
    transaction."""
    data = result.as_dict()
    share = data["drift_share"]
    severity = str(overall_severity(result.severity, prediction.severity or None))
    with transaction.atomic():
        consecutive = _consecutive_high(version, window, severity)
        report = DriftReport.objects.create(
            model_version=version,
            feature_view=version.feature_view,
            scan=scan,
            source=window.source,
            window_start=window.start,
            window_end=window.end,
            n_rows=window.n_rows,
            symbols=window.symbols,
            severity=severity,
            share_drifted=float(share) if share is not None else 0.0,
            n_features_tested=int(data["n_tested"]),
            n_features_drifted=int(data["n_drifted"]),
            thresholds=data["thresholds"],
            consecutive_high=consecutive,
            escalated=consecutive >= settings.DRIFT_ESCALATE_AFTER,
            prediction_severity=prediction.severity,
            prediction_reason=prediction.reason,
            prediction_statistics=prediction.statistics,
        )
        features = DriftFeatureResult.objects.bulk_create(
            [_feature_row(report, feature) for feature in data["features"]]
        )
        payload = report_payload(report, features)
        event_publish(
            type="drift.report.created", subject=f"model:{version.model.name}", payload=payload
        )
        if report.severity == Severity.HIGH:
            drift_alert_raise(report=report, payload=payload)
    severities = [(REPORT_FEATURE, report.severity)] + [(f.name, f.severity) for f in features]
    if report.prediction_severity:
        severities.append((PREDICTION_FEATURE, report.prediction_severity))
    model = version.model.name

    def after_commit() -> None:
        SCANS.labels(outcome=Outcome.CREATED).inc()
        record_report(model=model, severities=severities)

    transaction.on_commit(after_commit)
    return report


def _consecutive_high(version: ModelVersion, window: Window, severity: str) -> int:
    """HIGH reports in a row for the version, ending with this one (0 if this one is not)."""
    if severity != Severity.HIGH:
        return 0
    previous = (
        DriftReport.objects.filter(model_version=version, window_end__lt=window.end)
        .order_by("-window_end", "-id")
        .only("severity", "consecutive_high")
        .first()
    )
    if previous is None or previous.severity != Severity.HIGH:
        return 1
    return max(previous.consecutive_high, 1) + 1


def _feature_row(report: DriftReport, feature: dict[str, Any]) -> DriftFeatureResult:
    return DriftFeatureResult(
        report=report,
        name=feature["name"],
        severity=feature["severity"],
        drifted=bool(feature.get("drifted")),
        statistics=feature,
        **{column: feature.get(column) for column in FEATURE_COLUMNS},
    )


def report_payload(report: DriftReport, features: list[DriftFeatureResult]) -> dict[str, Any]:
    """What events and webhooks say about a report."""
    version = report.model_version
    return {
        "report_id": report.pk,
        "scan_id": report.scan_id,
        "model": version.model.name,
        "version": version.version,
        "severity": report.severity,
        "share_drifted": report.share_drifted,
        # None when prediction drift was not computed; `prediction_reason` then says why
        "prediction_severity": report.prediction_severity or None,
        "prediction_reason": report.prediction_reason,
        "features_drifted": [
            {"name": f.name, "severity": f.severity, "psi": f.psi} for f in features if f.drifted
        ],
        "window_start": report.window_start.isoformat(),
        "window_end": report.window_end.isoformat(),
        "source": report.source,
        "n_rows": report.n_rows,
        "consecutive_high": report.consecutive_high,
        "escalated": report.escalated,
    }
