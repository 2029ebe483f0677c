"""Celery tasks of the `mining` queue (config/settings.py routes `mining.*` there).

Flow: `start_job` builds what the job reads (BM25 index, embeddings: once, not per worker) and
fans the chunks out as a group of `mine_chunk` tasks, which any number of workers share. Each
chunk task stores its chunk (idempotently, mining/services.py) and then `tend`s the job: gives
back chunks whose worker died (mining/liveness.py), and marks the job done after the last chunk.

Every task takes ids, is safe to run twice and retries on transient errors (a database or Redis
connection dropped). Messages are acknowledged after the task ran (acks_late, global).
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

import redis.exceptions
from celery import group, shared_task
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from . import liveness, services
from .models import MiningChunk, MiningJob

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 2, "retry_backoff_max": 60, "retry_jitter": True,
         "max_retries": 8}
# How long after its start a chunk without a heartbeat counts as abandoned.
STALL_GRACE = liveness.TTL + 5
WATCH_SECONDS = 120


def _fail_unless_retrying(task, job: MiningJob, exc: Exception) -> None:
    if isinstance(exc, TRANSIENT) and task.request.retries < task.max_retries:
        return  # autoretry will run it again
    services.fail_job(job, error=f"{type(exc).__name__}: {exc}")


@shared_task(bind=True, **RETRY)
def start_job(self, job_id: int) -> None:
    job = MiningJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    try:
        if services.prepare_job(job) is None:
            return
    except Exception as exc:
        _fail_unless_retrying(self, job, exc)
        raise
    enqueue_chunks(job, MiningChunk.objects.filter(job=job, status=MiningChunk.Status.QUEUED))


def enqueue_chunks(job: MiningJob, chunks) -> None:
    ids = list(chunks.values_list("pk", flat=True)) if hasattr(chunks, "values_list") else [c.pk for c in chunks]
    if ids:
        group(mine_chunk.si(chunk_id) for chunk_id in ids).apply_async()


@shared_task(bind=True, **RETRY)
def mine_chunk(self, chunk_id: int) -> int | None:
    chunk = MiningChunk.objects.select_related("job").filter(pk=chunk_id).first()
    if chunk is None:
        return None
    worker = self.request.hostname or ""
    if chunk.status == MiningChunk.Status.DONE:
        return None
    if chunk.status == MiningChunk.Status.RUNNING and chunk.worker != worker and liveness.is_alive(chunk):
        return None  # a duplicate message: another live worker is mining it
    try:
        with liveness.Heartbeat(chunk.pk, worker):
            added = services.mine_chunk(chunk, worker=worker)
    except Exception as exc:
        _fail_unless_retrying(self, chunk.job, exc)
        raise
    tend(chunk.job)
    return added


def tend(job: MiningJob) -> str:
    """Give back abandoned chunks, finish the job when complete; what it found, for logs and tests."""
    job.refresh_from_db()
    if job.status not in services.ACTIVE:
        return job.status
    if job.status == MiningJob.Status.PENDING:
        return "pending"
    stalled = services.stalled_chunks(job, is_alive=liveness.is_alive, grace=STALL_GRACE)
    requeued = [chunk for chunk in stalled if services.requeue_chunk(chunk)]
    if requeued:
        logger.warning("mining job %s: chunk(s) %s of a dead worker given back", job.pk,
                       ", ".join(str(c.index) for c in requeued))
        enqueue_chunks(job, requeued)
    if services.finish_if_complete(job):
        return "done"
    chunks = MiningChunk.objects.filter(job=job)
    if not chunks.filter(status=MiningChunk.Status.QUEUED).exists() and chunks.filter(
        status=MiningChunk.Status.RUNNING
    ).exists() and liveness.claim_once(f"watch:{job.pk}", WATCH_SECONDS):
        # Only running chunks are left and no later chunk will tend the job: watch them, so a
        # chunk whose worker dies now is still given back without waiting for the beat.
        watch_job.delay(job.pk)
    return "running"


@shared_task(bind=True, **RETRY)
def watch_job(self, job_id: int) -> None:
    job = MiningJob.objects.filter(pk=job_id).first()
    deadline = time.monotonic() + WATCH_SECONDS - 10
    try:
        while job is not None and time.monotonic() < deadline:
            liveness.release(f"watch:{job_id}")  # let tend() start another watcher if needed
            state = tend(job)
            if state != "running" or not MiningChunk.objects.filter(job=job, status=MiningChunk.Status.RUNNING).exists():
                return
            liveness.claim_once(f"watch:{job_id}", WATCH_SECONDS)
            time.sleep(liveness.INTERVAL)
    finally:
        liveness.release(f"watch:{job_id}")


@shared_task(bind=True, **RETRY)
def tend_running_jobs(self) -> int:
    """Beat (every minute) and worker start-up: tend every running job; returns how many."""
    jobs = list(MiningJob.objects.filter(status=MiningJob.Status.RUNNING))
    for job in jobs:
        tend(job)
    # A job whose start message was lost (e.g. its worker died while building the index).
    lost = timezone.now() - timedelta(minutes=10)
    for job in MiningJob.objects.filter(status=MiningJob.Status.PENDING, cancel_requested=False, created_at__lt=lost):
        if liveness.claim_once(f"start:{job.pk}", 600):
            start_job.delay(job.pk)
    return len(jobs)


@shared_task(bind=True, **RETRY)
def premine(self) -> list[int]:
    """Beat: keep enough unjudged queries ready per active annotator (mining/premining.py)."""
    from .premining import premine_collections

    return [job.pk for job in premine_collections()]


@worker_ready.connect
def _tend_after_start(sender=None, **kwargs):
    # A worker that starts (often: replacing one that died) looks for chunks left behind.
    try:
        tend_running_jobs.delay()
    except Exception:  # the broker is not reachable yet: the beat will do it
        logger.warning("could not enqueue mining.tasks.tend_running_jobs at worker start", exc_info=True)
