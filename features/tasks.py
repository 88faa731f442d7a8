from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def feature_view_materialize_task(job_id: int) -> int:
    from features.models import MaterializationJob
    from features.store import feature_view_materialize

    job = MaterializationJob.objects.select_related("view").get(pk=job_id)
    return feature_view_materialize(view=job.view, job=job).rows_written


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def feature_view_ensure_default_task() -> int:
    """Sent when a worker starts (seed §3 step 5): register + materialize the default view."""
    from features.store import feature_view_ensure_default

    return feature_view_ensure_default().pk
