from __future__ import annotations

from experiments.models import Experiment, Run


def experiment_tracker_counts() -> dict[str, int]:
    return {
        "experiments": Experiment.objects.filter(lifecycle=Experiment.Lifecycle.ACTIVE).count(),
        "runs": Run.objects.count(),
        "runs_active": Run.objects.filter(status=Run.Status.RUNNING).count(),
    }
