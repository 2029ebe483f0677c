"""Celery tasks of the annotate app (default queue). Tasks take ids, call one service, and are safe
to run twice (each service claims its row with a conditional UPDATE)."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

logger = logging.getLogger(__name__)

# The export job lives with the export; imported here so the worker's autodiscovery registers it.
from .export.tasks import run_export  # noqa: F401


@shared_task(name="annotate.tasks.run_import", acks_late=True)
def run_import(job_id: int) -> str | None:
    from .services.imports import execute_import

    job = execute_import(job_id=job_id)
    return job.status if job else None


@shared_task(name="annotate.tasks.recover_lost_imports", acks_late=True)
def recover_lost_imports() -> dict[int, str]:
    """Worker start-up: imports of a dead worker sent again or failed, lost messages resent."""
    from .services.imports import recover_lost_imports as recover

    return recover()


@worker_ready.connect
def _recover_imports_after_start(sender=None, **kwargs):
    # A worker that starts is often the replacement of one that died mid-import.
    try:
        recover_lost_imports.delay()
    except Exception:  # the broker is not reachable yet
        logger.warning("could not enqueue annotate.tasks.recover_lost_imports at worker start", exc_info=True)

# The agreement report tasks (annotate/quality_tasks.py); imported so autodiscovery registers them.
from .quality_tasks import nightly_reports, recompute_report  # noqa: E402,F401
