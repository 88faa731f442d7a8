"""`manage.py drift_scan [--model NAME [--model-version N]]`: scan the Production versions now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from drift.models import DriftScan
from drift.services import DriftScanRequestError, drift_scan_all
from tradingsite import audit
from tradingsite.models import AuditAction, AuditOutcome


class Command(BaseCommand):
    help = (
        "Run a drift scan of the model versions in Production now, in this process (one report "
        "per version and window; a window already reported is left as it is)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default="", help="only this registered model")
        parser.add_argument(
            "--model-version", type=int, default=None, help="with --model: the version number"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["model_version"] is not None and not options["model"]:
            raise CommandError("--model-version needs --model")
        scope = {"model": options["model"], "version": options["model_version"], "via": "command"}
        try:
            scan = drift_scan_all(
                trigger=DriftScan.Trigger.COMMAND,
                model_name=options["model"],
                version=options["model_version"],
            )
        except DriftScanRequestError as exc:
            audit.record(
                AuditAction.DRIFT_SCAN_TRIGGERED, outcome=AuditOutcome.INVALID,
                details={**scope, "error": str(exc)},
            )  # fmt: skip
            raise CommandError(str(exc)) from exc
        audit.record(
            AuditAction.DRIFT_SCAN_TRIGGERED, outcome=AuditOutcome.ACCEPTED, target=scan,
            details={**scope, "status": scan.status},
        )  # fmt: skip
        for item in scan.items.select_related("model_version__model", "report"):
            version = item.model_version
            line = f"{version.model.name} v{version.version}: {item.outcome}"
            if item.report is not None:
                line += f", report {item.report.pk} {item.report.severity}"
            if item.detail:
                line += f" ({item.detail})"
            self.stdout.write(line)
        self.stdout.write(
            f"Drift scan {scan.pk} {scan.status}: {scan.models_watched} model(s) watched, "
            f"{scan.reports_created} report(s) created. {scan.detail}"
        )
        if scan.status == DriftScan.Status.FAILED:
            raise CommandError(f"drift scan {scan.pk} failed: {scan.detail}")
