from __future__ import annotations

from django.conf import settings

from features.models import FeatureDefinition, FeatureView


def feature_store_counts() -> dict[str, object]:
    """Counts for /api/v1/ml/status and the startup banner."""
    view_names = FeatureView.objects.values("name").distinct().count()
    return {
        "features": FeatureDefinition.objects.count(),
        "views": view_names,
        "view_versions": FeatureView.objects.count(),
        "default_view": settings.DEFAULT_FEATURE_VIEW,
        "default_view_registered": FeatureView.objects.filter(
            name=settings.DEFAULT_FEATURE_VIEW
        ).exists(),
    }
