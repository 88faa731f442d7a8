from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task
def model_train_task(**options: Any) -> str:
    """`experiments.train.model_train` in a worker; returns the run id (JSON-serialisable
    options only: names, ISO datetimes, numbers)."""
    from django.utils.dateparse import parse_datetime

    from experiments.train import model_train

    for key in ("start", "end"):
        if isinstance(options.get(key), str):
            options[key] = parse_datetime(options[key])
    return model_train(**options).run_uuid
