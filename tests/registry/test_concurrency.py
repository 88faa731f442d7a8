"""At most one Production version per model, also when two promotions race (PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from registry.errors import PromotionConflict
from registry.models import ModelVersion, RegisteredModel, Stage, StageTransition
from registry.services import version_transition
from tests.support import run_concurrently

TRIALS = 50


def race(pair: list[ModelVersion], actor: Any, *, reason: str) -> list[str]:
    """Promote both versions at the same instant, each caller having seen no Production."""
    outcomes: list[str] = []
    targets = iter(pair)

    def promote() -> None:
        version = next(targets)  # next() of a list iterator is atomic under the GIL
        try:
            version_transition(
                version=version, to_stage=Stage.PRODUCTION, actor=actor, reason=reason,
                expected_production=None,
            )  # fmt: skip
            outcomes.append("applied")
        except PromotionConflict:
            outcomes.append("conflict")

    run_concurrently(promote, 2)
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_promotions_leave_one_production_version_and_a_409(
    make_version: Callable[..., ModelVersion], promoter: Any
) -> None:
    template = make_version(metrics={"accuracy": 0.6, "roc_auc": 0.6})
    lineage = {
        field: getattr(template, field)
        for field in ("feature_view_id", "artifact_path", "artifact_sha256", "metrics")
    }
    started = time.monotonic()
    for trial in range(TRIALS):
        model = RegisteredModel.objects.create(name=f"race-{trial}")
        pair = [ModelVersion.objects.create(model=model, version=n, **lineage) for n in (1, 2)]
        outcomes = race(pair, promoter, reason=f"trial {trial}")
        assert sorted(outcomes) == ["applied", "conflict"], (trial, outcomes)
        stages = sorted(ModelVersion.objects.filter(model=model).values_list("stage", flat=True))
        assert stages == [Stage.NONE, Stage.PRODUCTION], (trial, stages)
        history = StageTransition.objects.filter(model=model)
        assert sorted(history.values_list("outcome", flat=True)) == ["applied", "conflict"]
        assert set(history.values_list("version__version", flat=True)) == {1, 2}
    assert time.monotonic() - started < 20


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_production_row_that_skips_the_service(
    make_version: Callable[..., ModelVersion],
) -> None:
    from django.db import IntegrityError

    a, b = make_version(), make_version()
    ModelVersion.objects.filter(pk=a.pk).update(stage=Stage.PRODUCTION)
    with pytest.raises(IntegrityError):
        ModelVersion.objects.filter(pk=b.pk).update(stage=Stage.PRODUCTION)
