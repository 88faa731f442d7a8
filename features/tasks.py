"""Materialization in Celery: one task per symbol (a group), so more workers make it faster.

`feature_view_materialize_task` starts the job and sends the group; each symbol task computes,
writes and records its symbol (`features.store.materialize_symbol`), and the task that records
the last symbol finishes the job (quality, watermark, events). No result backend is needed: the
job row counts the symbols under a row lock. A symbol that fails after its retries fails the
job, naming the symbol; the other symbols still finish their writes.
"""

from __future__ import annotations

from celery import group, shared_task
from django.db import OperationalError

SYMBOL_TASK_RETRIES = 3


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def feature_view_materialize_task(job_id: int) -> int:
    """Fan out the job's symbols; returns how many symbol tasks were sent."""
    from features.models import MaterializationJob
    from features.store import materialization_finish, materialization_job_start

    job = MaterializationJob.objects.select_related("view").get(pk=job_id)
    materialization_job_start(job)
    if not job.symbols:
        materialization_finish(view=job.view, job=job)
        return 0
    group(feature_view_materialize_symbol_task.si(job_id, s) for s in job.symbols).apply_async()
    return len(job.symbols)


@shared_task(bind=True, max_retries=SYMBOL_TASK_RETRIES)
def feature_view_materialize_symbol_task(self, job_id: int, symbol: str) -> int:  # noqa: ANN001
    """One symbol of a job; the call that records the job's last symbol finishes the job."""
    from features.models import MaterializationJob
    from features.store import materialization_finish, materialization_job_fail, materialize_symbol

    job = MaterializationJob.objects.select_related("view").get(pk=job_id)
    if job.status == MaterializationJob.Status.FAILED:
        return 0
    try:
        last = materialize_symbol(
            job=job, view=job.view, symbol=symbol, worker=self.request.hostname or ""
        )
    except OperationalError as exc:
        if self.request.retries < SYMBOL_TASK_RETRIES and not self.request.is_eager:
            raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
        materialization_job_fail(job, exc, symbol)
        raise
    except Exception as exc:
        materialization_job_fail(job, exc, symbol)
        raise
    if last:
        materialization_finish(view=job.view, job=job)
    return 1


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def feature_view_ensure_default_task() -> int:
    """Sent when a worker starts (seed §3 step 5): register + materialize the default view."""
    from features.store import feature_view_ensure_default

    return feature_view_ensure_default().pk
