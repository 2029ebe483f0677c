"""Celery tasks of the `mining` queue (config/settings.py routes `mining.*` there).

Flow: `start_job` builds what the job reads (BM25 index, embeddings: once, not per worker) and
fans the chunks out as a group of `mine_chunk` tasks, which any number of workers share. Each
chunk task stores its chunk (idempotently, mining/services.py) and then `tend`s the job: gives
back chunks whose worker died (config/liveness.py), and marks the job done after the last chunk.

Every task takes ids, is safe to run twice and retries on transient errors (a database or Redis
connection dropped). Messages are acknowledged after the task ran (acks_late, global).

A worker has no request language: what a task stores for the job's page (an error, a warning) is
written in the language of the user who started the job (annotate.language.in_language_of).
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import redis.exceptions
from celery import group, shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from annotate.language import in_language_of
from config import liveness
from config.celery import enqueue_when_a_worker_starts
from config.redis_client import redis_client

from . import services
from .models import MiningChunk, MiningJob

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 2, "retry_backoff_max": 60, "retry_jitter": True,
         "max_retries": 8}
# How long after its start a chunk without a heartbeat counts as abandoned.
STALL_GRACE = liveness.HEARTBEAT_TTL + 5
WATCH_DELAY = STALL_GRACE + 1  # seconds between a job's watcher runs


def _fail_unless_retrying(task, job: MiningJob, exc: Exception) -> None:
    if isinstance(exc, TRANSIENT) and task.request.retries < task.max_retries:
        return  # autoretry will run it again
    services.fail_job(job, error=f"{type(exc).__name__}: {exc}")


@shared_task(bind=True, **RETRY)
def start_job(self, job_id: int) -> None:
    job = MiningJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    with in_language_of(job.created_by_id):
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
    if (chunk.status == MiningChunk.Status.RUNNING and chunk.worker != worker
            and liveness.is_alive(MiningChunk.LIVENESS, chunk.pk)):
        return None  # a duplicate message: another live worker is mining it
    with in_language_of(chunk.job.created_by_id):
        try:
            with liveness.hold(MiningChunk.LIVENESS, chunk.pk, worker=worker):
                added = services.mine_chunk(chunk, worker=worker)
        except Exception as exc:
            _fail_unless_retrying(self, chunk.job, exc)
            raise
    tend(chunk.job)
    return added


def tend(job: MiningJob) -> str:
    """Give back chunks lost with a dead worker, finish the job when complete, keep a watcher armed.

    Two ways a chunk is lost when its worker dies (SIGKILL, machine gone): it was running (its
    heartbeat stops: given back after STALL_GRACE), or its message was reserved but not started
    (it stays queued with no message: when nothing is running and nothing happened for
    STALL_GRACE, every queued chunk is sent again; a duplicate message finds its chunk done).
    Returns the job's state, for logs and tests.
    """
    job.refresh_from_db()
    if job.status != MiningJob.Status.RUNNING:
        return job.status
    stalled = services.stalled_chunks(job, grace=STALL_GRACE)
    requeued = []
    if stalled:  # a chunk started too often fails the job, with a message for its page
        with in_language_of(job.created_by_id):
            requeued = [chunk for chunk in stalled if services.requeue_chunk(chunk)]
    if requeued:
        logger.warning("mining job %s: chunk(s) %s of a dead worker given back", job.pk,
                       ", ".join(str(c.index) for c in requeued))
        enqueue_chunks(job, requeued)
    orphans = services.orphaned_chunks(job, grace=STALL_GRACE)
    if orphans and _once(f"resend:{job.pk}", STALL_GRACE):
        logger.warning("mining job %s: nothing ran for %s s; chunk(s) %s sent again", job.pk, STALL_GRACE,
                       ", ".join(str(c.index) for c in orphans))
        enqueue_chunks(job, orphans)
    if services.finish_if_complete(job):
        return "done"
    arm_watcher(job.pk)
    return "running"


def arm_watcher(job_id: int) -> None:
    """One delayed `watch_job` per running job: the newest supersedes the ones before it.

    The watcher is what tends a job when no chunk task is left to do it (the last chunks died
    with their worker). Its message waits in a worker's memory (countdown), not occupying it.
    """
    token = uuid.uuid4().hex
    # The newest watcher's token; older watchers find it replaced and stop.
    redis_client().set(f"mining:watch:{job_id}", token, ex=WATCH_DELAY * 4 + 1)
    watch_job.apply_async((job_id, token), countdown=WATCH_DELAY)


@shared_task(bind=True, **RETRY)
def watch_job(self, job_id: int, token: str) -> str | None:
    current = redis_client().get(f"mining:watch:{job_id}")
    if current is None or current.decode() != token:
        return None  # superseded by a newer watcher
    job = MiningJob.objects.filter(pk=job_id).first()
    return tend(job) if job is not None else None


@enqueue_when_a_worker_starts
@shared_task(bind=True, **RETRY)
def tend_running_jobs(self) -> int:
    """Beat (every minute) and worker start-up: tend every running job; returns how many."""
    jobs = list(MiningJob.objects.filter(status=MiningJob.Status.RUNNING))
    for job in jobs:
        tend(job)
    # A job whose start message was lost (e.g. its worker died while building the index).
    lost = timezone.now() - timedelta(minutes=10)
    for job in MiningJob.objects.filter(status=MiningJob.Status.PENDING, cancel_requested=False, created_at__lt=lost):
        if _once(f"start:{job.pk}", 600):
            start_job.delay(job.pk)
    return len(jobs)


def _once(name: str, seconds: int) -> bool:
    """True for the first caller in `seconds` (a Redis SET NX): an action at most once per period."""
    return bool(redis_client().set(f"mining:once:{name}", "1", nx=True, ex=seconds))


@shared_task(bind=True, **RETRY)
def premine(self) -> list[int]:
    """Beat: keep enough unjudged queries ready per active annotator (mining/premining.py)."""
    from .premining import premine_collections

    return [job.pk for job in premine_collections()]

