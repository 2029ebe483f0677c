"""Celery tasks of the annotate app (default queue). Tasks take ids, call one service, and are safe
to run twice (each service claims its row with a conditional UPDATE)."""
from __future__ import annotations

from celery import shared_task

from config.celery import enqueue_when_a_worker_starts

# The export job lives with the export; imported here so the worker's autodiscovery registers it.
from .export.tasks import run_export  # noqa: F401


@shared_task(name="annotate.tasks.run_import", acks_late=True)
def run_import(job_id: int) -> str | None:
    from .importing import execute_import

    job = execute_import(job_id=job_id)
    return job.status if job else None


@enqueue_when_a_worker_starts
@shared_task(name="annotate.tasks.recover_lost_imports", acks_late=True)
def recover_lost_imports() -> dict[int, str]:
    """Worker start-up: imports of a dead worker sent again or failed, lost messages resent."""
    from .importing import recover_lost_imports as recover

    return recover()


# The agreement report tasks (annotate/quality/tasks.py); imported so autodiscovery registers them.
from .quality.tasks import nightly_reports, recompute_report  # noqa: E402,F401


@shared_task(name="annotate.tasks.refresh_priorities", acks_late=True)
def refresh_priorities(collection_id: int) -> int:
    """Recompute a collection's stale judging priorities (safe twice: only stale ones are done)."""
    from .judging.priorities import refresh_all
    from .models import Collection

    collection = Collection.objects.filter(pk=collection_id).first()
    return refresh_all(collection) if collection is not None else 0
