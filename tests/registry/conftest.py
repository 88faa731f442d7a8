"""Fixtures of the registry tests: an artifact store per test, finished runs with a model
artifact, a feature view with a quality score, and users holding the registry permissions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from experiments.models import Run
from experiments.services import run_artifact_store, run_create, run_finish, run_log_batch
from experiments.services.experiments import experiment_get_or_create
from experiments.train import MODEL_ARTIFACT, REFERENCE_ARTIFACT
from experiments.training.artifacts import MODEL_FORMAT, MODEL_FORMAT_VERSION
from features.models import FeatureView, MaterializationJob
from registry.models import ModelVersion
from registry.services import model_version_create_from_run

PERMISSIONS = {
    "promote": "promote_modelversion",
    "override": "override_promotion_policy",
    "create": "add_modelversion",
}


@pytest.fixture(autouse=True)
def artifact_root(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "artifacts"
    settings.ARTIFACT_ROOT = root
    return root


@pytest.fixture
def feature_view() -> FeatureView:
    view = FeatureView.objects.create(name="reg_view", version=1, feature_names=["rsi_14"])
    MaterializationJob.objects.create(
        view=view, status=MaterializationJob.Status.SUCCEEDED, quality={"score": 95.0}
    )
    return view


def model_document(n: int, *, n_features: int = 1) -> bytes:
    """A small valid model document (registration refuses anything else), distinct per `n`."""
    document = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "sklearn_version": "test",
        "feature_names": None,
        "impute_medians": [0.0] * n_features,
        "scale_mean": [0.0] * n_features,
        "scale_scale": [1.0] * n_features,
        "coef": [0.5] * n_features,
        "intercept": n / 1000,
        "params": {},
    }
    return json.dumps(document, sort_keys=True).encode()


@pytest.fixture
def make_run(feature_view: FeatureView) -> Callable[..., Run]:
    counter = iter(range(1, 10_000))

    def make(
        *,
        metrics: dict[str, float] | None = None,
        model_bytes: bytes | None = None,
        reference: dict[str, Any] | None = None,
        finish: bool = True,
        with_model: bool = True,
    ) -> Run:
        n = next(counter)
        experiment = experiment_get_or_create(name="registry-tests")
        run = run_create(
            experiment=experiment,
            name=f"run-{n}",
            feature_view=feature_view,
            training_set={"view": feature_view.name, "version": feature_view.version},
        )
        run_log_batch(run=run, metrics=metrics or {"accuracy": 0.6, "roc_auc": 0.6})
        if with_model:
            data = model_bytes or model_document(n)
            run_artifact_store(run=run, name=MODEL_ARTIFACT, data=data)
        run_artifact_store(
            run=run,
            name=REFERENCE_ARTIFACT,
            data=json.dumps(reference or {"schema_version": 1, "features": {}}).encode(),
        )
        return run_finish(run=run) if finish else run

    return make


@pytest.fixture
def make_version(make_run: Callable[..., Run]) -> Callable[..., ModelVersion]:
    def make(model_name: str = "direction", **run_kwargs: Any) -> ModelVersion:
        run = make_run(**run_kwargs)
        return model_version_create_from_run(model_name=model_name, run=run, user=None)

    return make


def _grant(user: Any, *names: str) -> Any:
    for name in names:
        user.user_permissions.add(Permission.objects.get(codename=PERMISSIONS[name]))
    return type(user).objects.get(pk=user.pk)  # a fresh object: no cached permissions


@pytest.fixture
def promoter(django_user_model: Any, password: str) -> Any:
    user = django_user_model.objects.create_user("promoter", password=password)
    return _grant(user, "promote", "create")


@pytest.fixture
def overrider(django_user_model: Any, password: str) -> Any:
    user = django_user_model.objects.create_user("overrider", password=password)
    return _grant(user, "promote", "override", "create")


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client
