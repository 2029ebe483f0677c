"""Reads about mining jobs: progress with an ETA, for the staff page, the JSON endpoint and the API."""
from __future__ import annotations

from django.utils import timezone

from .models import MiningChunk, MiningJob


def job_progress(job: MiningJob) -> dict:
    """Queries done / total, chunks, elapsed seconds and an ETA from the pace so far."""
    now = timezone.now()
    chunks = MiningChunk.objects.filter(job=job)
    elapsed = ((job.finished_at or now) - job.started_at).total_seconds() if job.started_at else 0.0
    remaining = max(job.queries_total - job.queries_done, 0)
    eta = None
    if job.status == MiningJob.Status.RUNNING and job.queries_done and elapsed > 0:
        eta = round(elapsed / job.queries_done * remaining, 1)
    return {
        "id": job.pk,
        "collection": job.collection.slug,
        "method": job.method,
        "status": job.status,
        "params": job.params,
        "queries_total": job.queries_total,
        "queries_done": job.queries_done,
        "fraction": round(job.queries_done / job.queries_total, 4) if job.queries_total else 1.0,
        "candidates_added": job.candidates_added,
        "chunks_total": chunks.count(),
        "chunks_done": chunks.filter(status=MiningChunk.Status.DONE).count(),
        "elapsed_seconds": round(elapsed, 1),
        "eta_seconds": eta,
        "cancel_requested": job.cancel_requested,
        "warnings": job.warnings,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def recent_jobs(limit: int = 50):
    return MiningJob.objects.select_related("collection").order_by("-created_at")[:limit]
