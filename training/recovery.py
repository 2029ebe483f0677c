"""Training runs left behind by a dead worker: found, and sent again or failed.

Runs from beat (every minute, migration 0002) and whenever a worker starts (training/tasks.py):

- A running run whose advisory lock is free lost its worker (annotate/services/liveness.py). It goes
  back to pending and is sent again while it has attempts left (the trainer resumes from its last
  checkpoint when ``checkpoint_every`` is set); after ``MAX_ATTEMPTS`` it fails, saying why.
- A running run whose lock is still held but whose heartbeat is older than ``STALE_AFTER`` sits on
  a hung or cut-off worker: it fails. Its attempt number fences that worker's later writes, so the
  promoted model stays as it is whatever the worker does when it wakes up.
- A pending run whose message was lost (the broker was down when it was queued, or a worker died
  holding the reserved message) is sent again after ``RESEND_AFTER``; a duplicate message is
  harmless (the run is claimed once).

A killed run never touched the promoted model: a ModelVersion is created and promoted only in the
last transaction of a run that finished (training/services.py, ``_record``).
"""
from __future__ import annotations

import logging
import shutil
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from annotate.services.liveness import abandoned

from .models import TrainingRun
from .services import run_output_dir, send_run

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
# Seconds; settings may override them (tests use short ones).
STALE_AFTER = 1800  # evaluation of a large dev set can go this long without a progress step
RESEND_AFTER = 600


def _seconds(name: str, default: int) -> timedelta:
    return timedelta(seconds=float(getattr(settings, name, default)))


def recover_lost_runs(*, now=None) -> dict[int, str]:
    """Recover every run left behind; returns {run id: "requeued" | "failed" | "resent"}."""
    now = now or timezone.now()
    outcomes: dict[int, str] = {}
    to_send: list[int] = []
    stale_before = now - _seconds("TRAINING_STALE_AFTER", STALE_AFTER)
    for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).select_related("collection"):
        with abandoned("training", run.pk) as gone:
            last_seen = run.heartbeat_at or run.started_at or run.created_at
            stale = last_seen < stale_before
            if not gone and not stale:
                continue
            outcome = _recover(run, gone=gone, last_seen=last_seen, now=now)
        if outcome:
            outcomes[run.pk] = outcome
            if outcome == "requeued":
                to_send.append(run.pk)  # after the lock is released, or the new task would back off
    resend_before = now - _seconds("TRAINING_RESEND_AFTER", RESEND_AFTER)
    quiet = Q(heartbeat_at__lt=resend_before) | Q(heartbeat_at__isnull=True, created_at__lt=resend_before)
    for run_id in TrainingRun.objects.filter(quiet, status=TrainingRun.Status.PENDING).values_list("pk", flat=True):
        # heartbeat_at of a pending run = when its message was last sent: once per RESEND_AFTER.
        if TrainingRun.objects.filter(quiet, pk=run_id, status=TrainingRun.Status.PENDING).update(heartbeat_at=now):
            outcomes[run_id] = "resent"
            to_send.append(run_id)
    for run_id in to_send:
        send_run(run_id)
    if outcomes:
        log.warning("training runs recovered: %s", outcomes)
    return outcomes


def _recover(run: TrainingRun, *, gone: bool, last_seen, now) -> str | None:
    this_attempt = TrainingRun.owned_by_attempt(run.pk, run.attempts)
    if gone and run.attempts < MAX_ATTEMPTS and not run.cancel_requested:
        if this_attempt.update(status=TrainingRun.Status.PENDING, heartbeat_at=now,
                               error=f"attempt {run.attempts} stopped with its worker; sent again"):
            return "requeued"
        return None
    if run.cancel_requested:
        status, error = TrainingRun.Status.CANCELLED, ""
    elif gone:
        status, error = TrainingRun.Status.FAILED, (
            f"the worker stopped (killed or lost) during each of {run.attempts} attempts; not retried again")
    else:
        status, error = TrainingRun.Status.FAILED, (
            f"no sign of life from the worker since {last_seen:%Y-%m-%d %H:%M:%S} UTC "
            "(hung or cut off); stopped")
    if not this_attempt.update(status=status, error=error, finished_at=now, eta_seconds=None):
        return None
    if gone:  # nobody writes there any more (a live, hung worker might: leave its files alone)
        shutil.rmtree(run_output_dir(run), ignore_errors=True)
    return "failed" if status == TrainingRun.Status.FAILED else "cancelled"
