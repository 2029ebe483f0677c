"""The export job, on the default queue; it takes a snapshot id and is safe to run twice."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="annotate.export.run_export", acks_late=True)
def run_export(snapshot_id: int) -> str | None:
    from .services import run_export_job

    snapshot = run_export_job(snapshot_id=snapshot_id)
    return snapshot.status if snapshot else None
