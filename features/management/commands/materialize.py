"""`manage.py materialize [VIEW] [--full] [--symbols A,B]` with a progress bar."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from features.models import FeatureView, MaterializationJob
from features.store import (
    FeatureStoreError,
    feature_view_latest,
    feature_view_materialize,
    materialization_job_create,
)

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Materialize a feature view (default: DEFAULT_FEATURE_VIEW) into the feature stores."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("view", nargs="?", default=None)
        parser.add_argument("--full", action="store_true", help="recompute every bar")
        parser.add_argument("--symbols", default="", help="comma separated (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["view"] or settings.DEFAULT_FEATURE_VIEW
        try:
            view = feature_view_latest(name)
        except FeatureView.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        symbols = [s for s in options["symbols"].split(",") if s] or None
        mode = (
            MaterializationJob.Mode.FULL if options["full"] else MaterializationJob.Mode.INCREMENTAL
        )
        try:
            job = materialization_job_create(view=view, mode=mode, symbols=symbols)
        except FeatureStoreError as exc:
            raise CommandError(str(exc)) from exc
        done = threading.Event()
        watcher = threading.Thread(target=self._show_progress, args=(job.pk, done), daemon=True)
        watcher.start()
        try:
            job = feature_view_materialize(view=view, job=job)
        finally:
            done.set()
            watcher.join()
        self._draw(job)
        self.stdout.write(
            f"\n{view}: {job.rows_written} rows for {len(job.symbols)} symbol(s), "
            f"quality {job.quality.get('score')}"
        )

    def _show_progress(self, job_id: int, done: threading.Event) -> None:
        from django.db import connection

        try:
            while not done.wait(0.5):
                self._draw(MaterializationJob.objects.get(pk=job_id))
        finally:
            connection.close()

    def _draw(self, job: MaterializationJob) -> None:
        filled = int(BAR_WIDTH * job.progress_pct / 100)
        line = (
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {job.progress_pct:5.1f}% "
            f"{job.symbols_done}/{len(job.symbols)} symbols, {job.rows_written} rows"
        )
        self.stdout.write(line, ending="")
        self.stdout.flush()
