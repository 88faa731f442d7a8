"""`manage.py train [--view core_technical] [--symbols A,B] [--start D] [--end D] ...`: train the
next-bar direction model on a feature view and log the run (experiments.train.model_train)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from experiments.train import DEFAULT_EXPERIMENT, TrainingError, model_train


def _moment(value: str | None, flag: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO datetime; a bare date means its first (or, for --end, last) second, in UTC."""
    if not value:
        return None
    if len(value) == 10:  # YYYY-MM-DD
        value = f"{value}T{'23:59:59' if end_of_day else '00:00:00'}+00:00"
    try:
        parsed = parse_datetime(value)
    except ValueError as exc:
        raise CommandError(f"{flag}: {value!r}: {exc}") from exc
    if parsed is None:
        raise CommandError(f"{flag}: {value!r} is not an ISO date or datetime")
    if parsed.tzinfo is None:
        raise CommandError(f"{flag}: {value!r} needs a timezone (e.g. +00:00)")
    return parsed


class Command(BaseCommand):
    help = (
        "Train a next-bar direction classifier with walk-forward validation on a feature view "
        "and log params, metrics, the model and its reference statistics as a run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--view", default=None, help="feature view (DEFAULT_FEATURE_VIEW)")
        parser.add_argument("--view-version", type=int, default=None, help="(latest)")
        parser.add_argument("--symbols", default="", help="comma separated (all with bars)")
        parser.add_argument("--start", default=None, help="first bar, ISO date/time (all)")
        parser.add_argument("--end", default=None, help="last bar time, ISO (all)")
        parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
        parser.add_argument("--run-name", default="")
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--min-train", type=float, default=0.5)
        parser.add_argument("--gap", type=int, default=0, help="embargo bars between folds")
        parser.add_argument("--C", type=float, default=None, help="inverse regularization")

    def handle(self, *args: Any, **options: Any) -> None:
        symbols = [s for s in options["symbols"].split(",") if s] or None
        try:
            run = model_train(
                view_name=options["view"],
                view_version=options["view_version"],
                symbols=symbols,
                start=_moment(options["start"], "--start"),
                end=_moment(options["end"], "--end", end_of_day=True),
                experiment_name=options["experiment"],
                run_name=options["run_name"],
                n_folds=options["folds"],
                min_train=options["min_train"],
                gap=options["gap"],
                model_params={"C": options["C"]} if options["C"] is not None else None,
                source="manage.py train",
            )
        except TrainingError as exc:
            raise CommandError(str(exc)) from exc
        latest = dict(run.latest_metrics.values_list("key", "value"))
        shown = ", ".join(
            f"{key} {latest[key]:.4f}"
            for key in ("accuracy", "roc_auc", "log_loss", "sharpe", "max_drawdown")
            if key in latest
        )
        self.stdout.write(
            f"Run {run.run_uuid} ({run.experiment.name}/{run.name}) {run.status}: {shown}"
        )
