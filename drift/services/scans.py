"""Drift scans: which versions a scan covers, one item per version, and finishing the scan.

A scheduled scan claims its interval slot (int(now / DRIFT_INTERVAL_SECONDS)) with an INSERT that
a partial unique index fences: with several beat processes (or a restarted worker's startup scan)
the first claim of a slot wins and the others are no-ops. On-demand scans (API, command) have no
slot. Either kind then scans each version once (`drift_scan_record`), in one Celery task per
version or inline, and the item that completes the set finishes the scan under a row lock.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from drift.metrics import SCANS
from drift.models import DriftReport, DriftScan, DriftScanItem
from drift.services.reports import drift_scan_version
from drift.services.windows import DriftScanError
from registry.models import ModelVersion, RegisteredModel, Stage
from registry.selectors import production_versions
from tradingsite.events import event_publish

logger = logging.getLogger(__name__)
Outcome = DriftScanItem.Outcome
NO_MODELS = "no models in PRODUCTION"
COUNTERS = {
    Outcome.CREATED: "reports_created",
    Outcome.DUPLICATE: "duplicates",
    Outcome.LOCKED: "duplicates",
    Outcome.SKIPPED: "skipped",
    Outcome.FAILED: "failed",
}


class WindowLocked(Exception):  # noqa: N818 - a state to wait out, not an error
    """Another worker holds the lease on the version's window; try again after a while."""


class DriftScanRequestError(ValueError):
    """An on-demand scan names something that cannot be scanned; `status_code` says how."""

    def __init__(self, message: str, *, status_code: int = 400, code: str = "invalid") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


def drift_scan_targets(*, model_name: str = "", version: int | None = None) -> list[ModelVersion]:
    """The Production versions a scan covers: all of them, or the named model's."""
    versions = production_versions().select_related("feature_view").order_by("model__name")
    if not model_name:
        return list(versions)
    model = RegisteredModel.objects.filter(name=model_name).first()
    if model is None:
        raise DriftScanRequestError(f"no model {model_name!r}", status_code=404, code="not_found")
    if version is not None:
        found = ModelVersion.objects.filter(model=model, version=version).first()
        if found is None:
            raise DriftScanRequestError(
                f"{model_name} has no version {version}", status_code=404, code="not_found"
            )
        if found.stage != Stage.PRODUCTION:
            raise DriftScanRequestError(
                f"{model_name} v{version} is in {found.stage}: only Production versions are "
                "scanned",
                status_code=409,
                code="not_in_production",
            )
    chosen = list(versions.filter(model=model))
    if not chosen:
        raise DriftScanRequestError(
            f"{model_name} has no version in Production", status_code=409, code="not_in_production"
        )
    return chosen


def drift_scan_create(
    *,
    trigger: str,
    versions: list[ModelVersion],
    requested_by: AbstractBaseUser | None = None,
    slot: int | None = None,
) -> DriftScan | None:
    """A running scan of `versions`; None when `slot` was already claimed (the scheduler that
    lost the race does nothing). A scan of no versions is complete at once."""
    now = timezone.now()
    _scans_stale_fail()
    try:
        with transaction.atomic():
            scan = DriftScan.objects.create(
                started_at=now,
                trigger=trigger,
                slot=slot,
                requested_by=requested_by,
                version_ids=[v.pk for v in versions],
                models_watched=len(versions),
            )
    except IntegrityError:
        if slot is None:
            raise
        logger.info(
            "Drift scan skipped: interval slot %s already claimed by another scheduler", slot
        )
        return None
    if not versions:
        _scan_finish(scan)
    return scan


def drift_scan_slot() -> int:
    """The current interval slot: int(now / DRIFT_INTERVAL_SECONDS)."""
    return int(timezone.now().timestamp() // max(1, settings.DRIFT_INTERVAL_SECONDS))


def drift_scan_schedule(
    *, trigger: str = DriftScan.Trigger.SCHEDULE, slot: int | None = None
) -> DriftScan | None:
    """The scheduled scan of interval `slot` (default: the current one) over every Production
    version, or None if another scheduler (a second beat, a restarted worker) already ran it."""
    if slot is None:
        slot = drift_scan_slot()
    return drift_scan_create(trigger=trigger, versions=drift_scan_targets(), slot=slot)


def drift_scan_request(
    *, requested_by: AbstractBaseUser, model_name: str = "", version: int | None = None
) -> DriftScan:
    """An on-demand scan, run by Celery (one task per version) after this transaction commits."""
    from drift.tasks import drift_scan_fan_out

    versions = drift_scan_targets(model_name=model_name, version=version)
    scan = drift_scan_create(
        trigger=DriftScan.Trigger.API, versions=versions, requested_by=requested_by
    )
    assert scan is not None  # no slot, so never fenced
    if versions:
        transaction.on_commit(lambda: drift_scan_fan_out(scan))
    return scan


def drift_scan_all(
    *,
    trigger: str = DriftScan.Trigger.MANUAL,
    requested_by: AbstractBaseUser | None = None,
    model_name: str = "",
    version: int | None = None,
) -> DriftScan:
    """Scan every Production version (or the named model's) now, in this process."""
    versions = drift_scan_targets(model_name=model_name, version=version)
    scan = drift_scan_create(trigger=trigger, versions=versions, requested_by=requested_by)
    assert scan is not None
    for target in versions:
        drift_scan_record(scan=scan, version=target)
    scan.refresh_from_db()
    return scan


def drift_scan_record(
    *, scan: DriftScan, version: ModelVersion, worker: str = "", wait_if_locked: bool = False
) -> DriftScanItem:
    """Scan one version for `scan` and record the outcome once; the last item finishes the scan.
    A database outage propagates (the task retries); any other error is recorded as FAILED.
    With `wait_if_locked`, a window another worker holds raises WindowLocked instead of being
    recorded: that worker may have died, and its lease lapses (a Celery task retries)."""
    existing = DriftScanItem.objects.filter(scan=scan, model_version=version).first()
    if existing is not None:  # a retried task whose first run recorded its item
        return existing
    report = None
    try:
        result = drift_scan_version(version, scan=scan)
        outcome, report, detail = result.outcome, result.report, result.detail
        if outcome == Outcome.LOCKED and wait_if_locked:
            raise WindowLocked(detail)
    except DriftScanError as exc:
        outcome, detail = Outcome.SKIPPED, str(exc)
        SCANS.labels(outcome=outcome).inc()
    except (OperationalError, WindowLocked):
        raise
    except Exception as exc:
        logger.exception("drift scan of %s failed", version)
        outcome, detail = Outcome.FAILED, f"{type(exc).__name__}: {exc}"
        SCANS.labels(outcome=outcome).inc()
    return _item_record(
        scan=scan, version=version, outcome=outcome, report=report, detail=detail, worker=worker
    )


def _item_record(
    *,
    scan: DriftScan,
    version: ModelVersion,
    outcome: str,
    report: DriftReport | None,
    detail: str,
    worker: str,
) -> DriftScanItem:
    with transaction.atomic():
        # The row lock serializes the items of one scan: exactly one of them sees the set
        # complete, and a retried task's second item is never written.
        locked = DriftScan.objects.select_for_update().get(pk=scan.pk)
        item = DriftScanItem.objects.filter(scan=locked, model_version=version).first()
        if item is not None:
            return item
        item = DriftScanItem.objects.create(
            scan=locked,
            model_version=version,
            outcome=outcome,
            report=report,
            detail=detail,
            worker=worker[:255],
        )
        DriftScan.objects.filter(pk=locked.pk).update(
            **{COUNTERS[outcome]: F(COUNTERS[outcome]) + 1}
        )
        if (
            locked.items.count() >= locked.models_watched
            and locked.status == DriftScan.Status.RUNNING
        ):
            locked.refresh_from_db()
            _scan_finish(locked)
    return item


def _item_text(item: DriftScanItem) -> str:
    version = item.model_version
    label = f"{version.model.name} v{version.version}"
    if item.report is None:
        return f"{label}: {item.detail}"
    report = item.report
    text = f"{label}: {report.severity}, {report.share_drifted:.0%} of features drifted"
    if report.prediction_severity:
        text += f", predictions {report.prediction_severity}"
    if item.outcome != Outcome.CREATED:
        text += " (window already reported)"
    return text


def _scan_finish(scan: DriftScan) -> None:
    """Complete (or fail, if a version failed unexpectedly) the scan and announce it."""
    items = list(scan.items.select_related("model_version__model", "report"))
    scan.detail = "; ".join(_item_text(item) for item in items) if items else NO_MODELS
    scan.status = DriftScan.Status.FAILED if scan.failed else DriftScan.Status.COMPLETE
    scan.finished_at = timezone.now()
    with transaction.atomic():
        scan.save(update_fields=["detail", "status", "finished_at"])
        event_publish(
            type="drift.scan.completed",
            subject=f"scan:{scan.pk}",
            payload={
                "scan_id": scan.pk,
                "trigger": scan.trigger,
                "status": scan.status,
                "models_watched": scan.models_watched,
                "reports_created": scan.reports_created,
                "duplicates": scan.duplicates,
                "skipped": scan.skipped,
                "failed": scan.failed,
                "detail": scan.detail,
            },
        )
    if not items:
        logger.info("Drift scan complete: no models in PRODUCTION (scan %s)", scan.pk)
        return
    logger.info(
        "Drift scan complete: scan %s, %d model(s) watched, %d report(s) created, "
        "%d already reported, %d skipped, %d failed (%s)",
        scan.pk,
        scan.models_watched,
        scan.reports_created,
        scan.duplicates,
        scan.skipped,
        scan.failed,
        scan.detail,
    )


def _scans_stale_fail() -> None:
    """Scans still running after DRIFT_SCAN_TIMEOUT_SECONDS lost a task (a worker died for
    good): mark them failed so the monitor does not show them running forever."""
    cutoff = timezone.now() - timedelta(seconds=settings.DRIFT_SCAN_TIMEOUT_SECONDS)
    DriftScan.objects.filter(status=DriftScan.Status.RUNNING, started_at__lt=cutoff).update(
        status=DriftScan.Status.FAILED,
        finished_at=timezone.now(),
        detail="did not finish within DRIFT_SCAN_TIMEOUT_SECONDS: a worker was lost",
    )
