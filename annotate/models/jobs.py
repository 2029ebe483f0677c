"""Background jobs: the job base every job model builds on, and the annotate app's two jobs.

`Job` holds what every job has (status, created_by, error, timestamps, attempts, heartbeat) and
`JobQuerySet` the bookkeeping written once for all of them: the claim (liveness held, then a
conditional UPDATE pending -> running as a new attempt), writes fenced by the attempt, and the
recovery sweep's common part. ImportJob and ExportSnapshot live here; mining.MiningJob and
training.TrainingRun build on the same base. Liveness itself is config/liveness.py.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from config import liveness

from .collections import Collection

log = logging.getLogger(__name__)


class JobQuerySet(models.QuerySet):
    def active(self) -> JobQuerySet:
        return self.filter(status__in=self.model.ACTIVE)

    def owned_by_attempt(self, pk: int, attempt: int) -> JobQuerySet:
        """The job as long as ``attempt`` still owns it (running, not claimed again since): every
        write of a worker and of the recovery sweep goes through this, so a superseded attempt
        changes nothing."""
        return self.filter(pk=pk, status=self.model.Status.RUNNING, attempts=attempt)

    @contextmanager
    def claim(self, pk: int, **conditions) -> Iterator[Job | None]:
        """Hold the job and move it pending -> running as a new attempt; yields the job, or None
        when it is not this task's to run (a live worker holds it, or it is no longer pending:
        a redelivered or duplicated message changes nothing). The hold lasts until the block ends,
        so the block should write the job's final status.

        The hold first, the claim second: whoever sees the job running with nobody holding it
        knows its worker is gone.
        """
        kind = self.model.LIVENESS
        with liveness.hold(kind, pk) if kind else nullcontext(True) as held:
            if not held:
                yield None
                return
            now = timezone.now()
            claimed = self.filter(pk=pk, status=self.model.Status.PENDING, **conditions).update(
                status=self.model.Status.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1)
            yield self.get(pk=pk) if claimed else None

    def beat(self, pk: int, attempt: int, **fields) -> bool:
        """A sign of life of ``attempt``, with any progress ``fields``; False once it lost the job."""
        return bool(self.owned_by_attempt(pk, attempt).update(heartbeat_at=timezone.now(), **fields))

    def requeue(self, job: Job, *, now: datetime | None = None, **fields) -> bool:
        """Back to pending for another attempt, unless the job moved on since ``job`` was read."""
        return bool(self.owned_by_attempt(job.pk, job.attempts).update(
            status=self.model.Status.PENDING, heartbeat_at=now or timezone.now(), **fields))

    def resend_due(self, *, quiet_before: datetime, now: datetime) -> list[int]:
        """Pending jobs whose message was last sent before ``quiet_before`` (lost: the broker was
        down when it was queued, or a worker died holding the reserved message); each is marked as
        sent ``now``, so it is sent again at most once per period. A duplicate message is harmless:
        the job is claimed once."""
        quiet = Q(heartbeat_at__lt=quiet_before) | Q(heartbeat_at__isnull=True, created_at__lt=quiet_before)
        pending = self.filter(quiet, status=self.model.Status.PENDING)
        # heartbeat_at of a pending job = when its message was last sent.
        return [pk for pk in pending.values_list("pk", flat=True) if pending.filter(pk=pk).update(heartbeat_at=now)]

    def recover_lost(self, *, recover: Callable[..., str | None], send: Callable[[int], object],
                     resend_after: timedelta, stale_after: timedelta | None = None,
                     now: datetime | None = None) -> dict[int, str]:
        """The recovery sweep: returns {job id: outcome} for the jobs it changed.

        A running job whose worker is gone (nobody holds it), or silent for longer than
        ``stale_after``, is passed to ``recover(job, gone=..., now=...)``, which decides its fate
        ("requeued", "failed", "cancelled"; None when the job moved on meanwhile) while the job is
        held against a new worker. A pending job not sent for ``resend_after`` is "resent". Jobs
        requeued or resent are sent with ``send(pk)`` after every hold is released, or the new task
        would back off.
        """
        now = now or timezone.now()
        outcomes: dict[int, str] = {}
        stale_before = now - stale_after if stale_after is not None else None
        for job in self.filter(status=self.model.Status.RUNNING):
            with liveness.abandoned(self.model.LIVENESS, job.pk) as gone:
                stale = stale_before is not None and job.last_seen < stale_before
                if not gone and not stale:
                    continue
                outcome = recover(job, gone=gone, now=now)
            if outcome:
                outcomes[job.pk] = outcome
        for pk in self.resend_due(quiet_before=now - resend_after, now=now):
            outcomes.setdefault(pk, "resent")
        for pk, outcome in outcomes.items():
            if outcome in ("requeued", "resent"):
                send(pk)
        if outcomes:
            log.warning("%s recovered: %s", self.model._meta.verbose_name_plural, outcomes)
        return outcomes


class Job(models.Model):
    """What every background job has: pending -> running -> done | failed | cancelled."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    # Not finished yet: pending or running.
    ACTIVE: ClassVar[tuple[str, ...]] = (Status.PENDING, Status.RUNNING)
    # The liveness kind (config/liveness.py) its worker holds while running it; None: not held.
    LIVENESS: ClassVar[str | None] = None

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # How many times a worker claimed the job; a write of an older attempt is refused (fencing).
    attempts = models.PositiveSmallIntegerField(default=0)
    # Last sign of life: the worker's progress while running, the last (re)sent message while pending.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def last_seen(self) -> datetime:
        return self.heartbeat_at or self.started_at or self.created_at


# A status as the pages say it: in English the code itself (what the pages always showed, and what
# their scripts compare), in another language its translation. The admin shows the choices' labels.
STATUS_WORDS = {
    Job.Status.PENDING: pgettext_lazy("job status", "pending"),
    Job.Status.RUNNING: pgettext_lazy("job status", "running"),
    Job.Status.DONE: pgettext_lazy("job status", "done"),
    Job.Status.FAILED: pgettext_lazy("job status", "failed"),
    Job.Status.CANCELLED: pgettext_lazy("job status", "cancelled"),
}


def status_word(status: str) -> str:
    """A job's status in the viewer's language (an unknown code as it is)."""
    return str(STATUS_WORDS.get(status, status))


class ImportJob(Job):
    """An import started from the web or the API, run by a Celery worker."""

    LIVENESS = "import"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="import_jobs")
    # {"corpus": "/abs/path", ...}: the uploaded files, kept under DATA_DIR/uploads/<job id>/.
    files = models.JSONField(default=dict)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)

    @property
    def progress(self) -> float:
        if self.status == self.Status.DONE:
            return 1.0
        return min(1.0, self.bytes_done / self.bytes_total) if self.bytes_total else 0.0


class ExportSnapshot(Job):
    """One export: its parameters, counts, file and checksum, so a training run names its data exactly."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="export_snapshots")
    format = models.CharField(max_length=16)
    split = models.CharField(max_length=8, default="all")
    params = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    # Human judgments in the collection when the export ran: retraining compares against it.
    n_judgments = models.PositiveIntegerField(default=0)
