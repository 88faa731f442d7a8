from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from experiments.models import LatestMetric, Run
from experiments.storage import blob_path
from experiments.train import MODEL_ARTIFACT
from registry.errors import ArtifactIntegrityError, RegistryError
from registry.models import ModelVersion, RegisteredModel, Stage
from registry.services import model_version_create_from_run

pytestmark = pytest.mark.django_db


def test_versions_are_numbered_per_model(make_version: Callable[..., ModelVersion]) -> None:
    a1, a2 = make_version("alpha"), make_version("alpha")
    b1 = make_version("beta")
    assert (a1.version, a2.version, b1.version) == (1, 2, 1)
    assert a1.model == a2.model != b1.model
    assert a1.stage == Stage.NONE


def test_it_copies_the_runs_lineage(make_run: Callable[..., Run], user: Any) -> None:
    run = make_run(metrics={"accuracy": 0.61, "sharpe": 1.2}, reference={"features": {"x": 1}})
    version = model_version_create_from_run(
        model_name="direction", run=run, user=user, description="first"
    )
    artifact = run.artifacts.get(path=MODEL_ARTIFACT)
    assert version.run == run
    assert version.feature_view == run.feature_view
    assert version.training_set == run.training_set
    assert (version.artifact_path, version.artifact_sha256) == (artifact.path, artifact.sha256)
    assert version.metrics == {"accuracy": 0.61, "sharpe": 1.2}
    assert version.reference_statistics == {"features": {"x": 1}}
    assert version.created_by == user and version.model.owner == user
    assert version.description == "first"


def test_a_nan_metric_is_stored_as_null(make_run: Callable[..., Run]) -> None:
    run = make_run()
    LatestMetric.objects.filter(run=run, key="accuracy").update(value=0, is_nan=True)
    version = model_version_create_from_run(model_name="m", run=run, user=None)
    assert version.metrics["accuracy"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in version.metrics.values())


def test_it_refuses_a_run_that_is_not_finished(make_run: Callable[..., Run]) -> None:
    run = make_run(finish=False)
    with pytest.raises(RegistryError, match="RUNNING; only a FINISHED run"):
        model_version_create_from_run(model_name="m", run=run, user=None)
    assert not RegisteredModel.objects.exists()


def test_it_refuses_a_run_without_a_model_artifact(make_run: Callable[..., Run]) -> None:
    with pytest.raises(RegistryError, match="has no model artifact"):
        model_version_create_from_run(model_name="m", run=make_run(with_model=False), user=None)


def test_it_refuses_an_artifact_whose_blob_changed(make_run: Callable[..., Run]) -> None:
    run = make_run()
    path = blob_path(run.artifacts.get(path=MODEL_ARTIFACT).sha256)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="does not hash"):
        model_version_create_from_run(model_name="m", run=run, user=None)
    assert not ModelVersion.objects.exists()


def test_it_refuses_a_model_name_that_could_be_a_path(make_run: Callable[..., Run]) -> None:
    with pytest.raises(RegistryError, match="must match"):
        model_version_create_from_run(model_name="../etc", run=make_run(), user=None)
