"""Training runs left behind by a dead worker: found, and sent again or failed.

Runs from beat (every minute, migration 0002) and whenever a worker starts (training/tasks.py).
The sweep is the job base's (annotate/models/jobs.py, ``recover_lost``); the rules here are a run's:

- A running run nobody holds lost its worker (config/liveness.py). It goes back to pending and is
  sent again while it has attempts left (the trainer resumes from its last checkpoint when
  ``checkpoint_every`` is set); after ``MAX_ATTEMPTS`` it fails, saying why.
- A running run still held but whose heartbeat is older than ``STALE_AFTER`` sits on a hung or
  cut-off worker: it fails. Its attempt number fences that worker's later writes, so the promoted
  model stays as it is whatever the worker does when it wakes up.
- A pending run whose message was lost (the broker was down when it was queued, or a worker died
  holding the reserved message) is sent again after ``RESEND_AFTER``; a duplicate message is
  harmless (the run is claimed once).

A killed run never touched the promoted model: a ModelVersion is created and promoted only in the
last transaction of a run that finished (training/services.py, ``_record``).
"""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta

from django.conf import settings

from .models import TrainingRun
from .services import run_output_dir, send_run

MAX_ATTEMPTS = 2
# Seconds; settings may override them (tests use short ones).
STALE_AFTER = 1800  # evaluation of a large dev set can go this long without a progress step
RESEND_AFTER = 600


def _seconds(name: str, default: int) -> timedelta:
    return timedelta(seconds=float(getattr(settings, name, default)))


def recover_lost_runs(*, now: datetime | None = None) -> dict[int, str]:
    """Recover every run left behind; returns {run id: "requeued" | "failed" | "cancelled" | "resent"}."""
    return TrainingRun.objects.select_related("collection").recover_lost(
        recover=_recover, send=send_run, now=now,
        stale_after=_seconds("TRAINING_STALE_AFTER", STALE_AFTER),
        resend_after=_seconds("TRAINING_RESEND_AFTER", RESEND_AFTER),
    )


def _recover(run: TrainingRun, *, gone: bool, now: datetime) -> str | None:
    if gone and run.attempts < MAX_ATTEMPTS and not run.cancel_requested:
        requeued = TrainingRun.objects.requeue(run, now=now,
                                               error=f"attempt {run.attempts} stopped with its worker; sent again")
        return "requeued" if requeued else None
    if run.cancel_requested:
        status, error = TrainingRun.Status.CANCELLED, ""
    elif gone:
        status, error = TrainingRun.Status.FAILED, (
            f"the worker stopped (killed or lost) during each of {run.attempts} attempts; not retried again")
    else:
        status, error = TrainingRun.Status.FAILED, (
            f"no sign of life from the worker since {run.last_seen:%Y-%m-%d %H:%M:%S} UTC "
            "(hung or cut off); stopped")
    this_attempt = TrainingRun.objects.owned_by_attempt(run.pk, run.attempts)
    if not this_attempt.update(status=status, error=error, finished_at=now, eta_seconds=None):
        return None
    if gone:  # nobody writes there any more (a live, hung worker might: leave its files alone)
        shutil.rmtree(run_output_dir(run), ignore_errors=True)
    return "failed" if status == TrainingRun.Status.FAILED else "cancelled"
