from __future__ import annotations

from django.db.models import QuerySet

from registry.models import ModelVersion, RegisteredModel, Stage


def production_versions() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(stage=Stage.PRODUCTION).select_related("model")


def registry_counts() -> dict[str, int]:
    return {
        "models": RegisteredModel.objects.count(),
        "versions": ModelVersion.objects.count(),
        "production_versions": production_versions().count(),
    }
