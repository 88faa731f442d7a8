"""Fixtures of the drift tests: synthetic model versions in Production, whose reference is drawn
from N(0, 1) and whose recent materialized rows are shifted by a chosen number of stds, so a
scan's severity is known in advance without training a model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from drift.reference import reference_statistics
from features.models import FeatureRow, FeatureView
from registry.models import ModelVersion, RegisteredModel, Stage

FEATURES = ["alpha", "beta", "gamma"]
SYMBOLS = ["AAA", "BBB"]
FIRST_DAY = datetime(2024, 1, 1, 21, tzinfo=UTC)


def rows_add(
    view: FeatureView, *, start: datetime, days: int, shift: float, seed: int = 1
) -> datetime:
    """`days` daily rows per symbol from `start`, N(shift, 1) in every feature; returns the day
    after the last row."""
    rng = np.random.default_rng(seed)
    FeatureRow.objects.bulk_create(
        FeatureRow(
            view=view,
            symbol=symbol,
            ts=start + timedelta(days=day),
            values=list(rng.normal(shift, 1.0, len(view.feature_names))),
        )
        for symbol in SYMBOLS
        for day in range(days)
    )
    return start + timedelta(days=days)


@pytest.fixture
def make_version() -> Callable[..., ModelVersion]:
    """A Production version of `model` with a N(0, 1) reference and 60 days of rows shifted by
    `shift` reference stds in its own feature view (named `view_name`)."""
    counter = iter(range(1, 1000))

    def make(
        model: str = "drifty",
        *,
        shift: float = 3.0,
        view_name: str = "",
        stage: str = Stage.PRODUCTION,
        days: int = 60,
    ) -> ModelVersion:
        n = next(counter)
        view = FeatureView.objects.create(
            name=view_name or f"view_{n}", version=1, feature_names=list(FEATURES)
        )
        rng = np.random.default_rng(n)
        frame = pd.DataFrame(rng.normal(0.0, 1.0, (400, len(FEATURES))), columns=FEATURES)
        registered, _ = RegisteredModel.objects.get_or_create(name=model)
        number = registered.versions.count() + 1
        version = ModelVersion.objects.create(
            model=registered,
            version=number,
            stage=stage,
            feature_view=view,
            training_set={"symbols": SYMBOLS},
            artifact_path=f"model-{n}.json",
            artifact_sha256=f"{n:064x}",
            reference_statistics=reference_statistics(frame, FEATURES, sample_size=400),
        )
        rows_add(view, start=FIRST_DAY, days=days, shift=shift, seed=n)
        return ModelVersion.objects.select_related("model", "feature_view").get(pk=version.pk)

    return make


@pytest.fixture
def admin(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("boss", "b@example.com", "pw-Long-enough-1")


@pytest.fixture
def scanner(django_user_model: Any) -> Any:
    """A user holding drift.run_scan (and nothing else)."""
    user = django_user_model.objects.create_user("scanner", password="pw-Long-enough-1")
    user.user_permissions.add(Permission.objects.get(codename="run_scan"))
    return type(user).objects.get(pk=user.pk)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client
