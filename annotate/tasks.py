"""Celery tasks of the annotate app (default queue). Tasks take ids, call one service, and are safe
to run twice (each service claims its row with a conditional UPDATE)."""
from __future__ import annotations

from celery import shared_task

# The export job lives with the export; imported here so the worker's autodiscovery registers it.
from .export.tasks import run_export  # noqa: F401


@shared_task(name="annotate.tasks.run_import", acks_late=True)
def run_import(job_id: int) -> str | None:
    from .services.imports import execute_import

    job = execute_import(job_id=job_id)
    return job.status if job else None

# The agreement report tasks (annotate/quality_tasks.py); imported so autodiscovery registers them.
from .quality_tasks import nightly_reports, recompute_report  # noqa: E402,F401
