"""/api/v1/ml/status reports the experiment tracker: experiments, runs, running runs, last start."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from experiments import services

pytestmark = pytest.mark.django_db


def test_ml_status_counts_active_experiments_and_runs(api_client: APIClient, user: Any) -> None:
    assert api_client.get("/api/v1/ml/status").json()["experiments"] == {
        "experiments": 0,
        "runs": 0,
        "runs_active": 0,
        "last_run_at": None,
    }
    kept = services.experiment_get_or_create(name="kept")
    gone = services.experiment_get_or_create(name="gone")
    services.run_create(experiment=kept, start_time_ms=1_700_000_000_000, user=user)
    finished = services.run_create(experiment=kept, start_time_ms=1_700_000_060_000)
    services.run_finish(run=finished)
    services.run_create(experiment=gone, start_time_ms=1_800_000_000_000)
    services.experiment_delete(experiment=gone)  # its run goes with it

    counts = api_client.get("/api/v1/ml/status").json()["experiments"]
    assert counts == {
        "experiments": 1,
        "runs": 2,
        "runs_active": 1,
        "last_run_at": "2023-11-14T22:14:20+00:00",
    }
