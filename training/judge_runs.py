"""Machine judge runs: ask for the machine judge's grades of a collection; a worker writes them.

A run (training.models.MachineJudgeRun) goes pending -> running -> done | failed | cancelled, one
at a time per collection. It is asked for after each promotion (with the promoted version) and by
staff from the training page (with the version that serves, or the base model before any
promotion: what judges before the first run). The worker claims it through the job base (held
while it runs, config/liveness.py), so a duplicated message does nothing; the grades themselves
are written by training.machine_judge, which revises nothing on a rerun.

A run whose model no longer serves when a worker reaches it -- a newer promotion, or a version
promoted after the base model was asked for -- is cancelled: the judge of the model that serves
now is queued by that promotion, and an older model's grades must not land after it.

A worker that dies mid-run leaves it running with nobody holding it; the training recovery sweep
(beat, every minute) sends it again once, then fails it; a pending run whose message was lost is
sent again after RESEND_AFTER. (No staleness rule: the judge scores every candidate in one call
with no progress to beat, so a live holder is trusted however long it takes.)
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from annotate.models.jobs import status_word

from .models import MachineJudgeRun, ModelVersion
from .registry import promoted_version

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
RESEND_AFTER = 600  # seconds; settings.MACHINE_JUDGE_RESEND_AFTER overrides it (tests use short ones)


class JudgeRunAlreadyActive(Exception):
    """The collection's machine judge is already queued or running."""


@transaction.atomic
def request_machine_judge(*, collection, version: ModelVersion | None = None, created_by=None,
                          replace_pending: bool = False, enqueue: bool = True) -> MachineJudgeRun:
    """A pending run of the machine judge with ``version`` (None: the base model), sent to a worker
    once the transaction commits; JudgeRunAlreadyActive while one of the collection's is active.
    ``replace_pending`` (a promotion): a run still waiting for a worker is cancelled for this one
    (its model no longer serves); a running one finishes and then asks for the served model's.
    ``enqueue=False``: the caller runs it here (execute_judge_run; the command's --sync)."""
    if version is not None and version.collection_id != collection.pk:
        raise ValueError(f"model version {version.pk} is not collection {collection.slug}'s")
    model_path = version.path if version is not None else str(settings.BASE_MODEL_DIR or "")
    if replace_pending:
        MachineJudgeRun.objects.filter(collection=collection, status=MachineJudgeRun.Status.PENDING).update(
            status=MachineJudgeRun.Status.CANCELLED, finished_at=timezone.now(),
            error=f"replaced by the judge of {f'model version {version.pk}' if version else 'the base model'}")
    try:
        with transaction.atomic():
            run = MachineJudgeRun.objects.create(collection=collection, version=version, model_path=model_path,
                                                 created_by=created_by)
    except IntegrityError:
        active = MachineJudgeRun.objects.active().filter(collection=collection).first()
        since = f" ({status_word(active.status)}, {active.created_at:%Y-%m-%d %H:%M} UTC)" if active else ""
        raise JudgeRunAlreadyActive(
            _("the machine judge of %(collection)s is already queued or running%(since)s")
            % {"collection": collection, "since": since}) from None
    if enqueue:
        transaction.on_commit(lambda: send_judge_run(run.pk))
    return run


def request_served_judge(*, collection, created_by=None, enqueue: bool = True) -> MachineJudgeRun:
    """Staff's "judge now": the version that serves, else the base model."""
    return request_machine_judge(collection=collection, version=promoted_version(collection=collection),
                                 created_by=created_by, enqueue=enqueue)


def send_judge_run(run_id: int) -> bool:
    """Queue the run's task; with the broker down it stays pending and the sweep sends it later."""
    from .tasks import machine_judge

    try:
        machine_judge.delay(run_id)
    except Exception as error:  # noqa: BLE001 -- the row is committed; the sweep resends it
        log.warning("could not queue machine judge run %s (%s); the recovery sweep will send it", run_id, error)
        return False
    return True


def execute_judge_run(*, run_id: int) -> MachineJudgeRun | None:
    """The worker's side: claim the run, judge, record the outcome. None: not this task's to run
    (done already, or a live worker holds it)."""
    from .machine_judge import judge_collection

    with MachineJudgeRun.objects.claim(run_id) as run:
        if run is None:
            return None
        owned = MachineJudgeRun.objects.owned_by_attempt(run.pk, run.attempts)
        superseded = _superseded(run)
        if superseded:
            owned.update(status=MachineJudgeRun.Status.CANCELLED, error=superseded, finished_at=timezone.now())
            return MachineJudgeRun.objects.get(pk=run.pk)
        try:
            judgement = judge_collection(collection=run.collection, model_dir=run.model_path or None)
        except Exception as error:  # the grades written so far stand (each write is whole); the page says why
            log.exception("machine judge run %s failed", run.pk)
            owned.update(status=MachineJudgeRun.Status.FAILED, error=f"{type(error).__name__}: {error}",
                         finished_at=timezone.now())
            return MachineJudgeRun.objects.get(pk=run.pk)
        owned.update(status=MachineJudgeRun.Status.DONE, result=vars(judgement), error="",
                     finished_at=timezone.now())
    if _superseded(run):  # promoted while this one ran (its request found this one active): judge again
        try:
            request_served_judge(collection=run.collection)
        except JudgeRunAlreadyActive:
            pass  # asked for meanwhile
    return MachineJudgeRun.objects.get(pk=run.pk)


def _superseded(run: MachineJudgeRun) -> str:
    """Why the run's model is no longer the one to judge with ("": it is)."""
    serving = promoted_version(collection=run.collection)
    if run.version_id is None and serving is not None:
        return f"model version {serving.pk} serves now; its judge replaces the base model's"
    if run.version_id is not None and (serving is None or serving.pk != run.version_id):
        now = f"model version {serving.pk} serves now" if serving else "no model version serves now"
        return f"{now}, not version {run.version_id}"
    return ""


def recover_lost_judge_runs(*, now: datetime | None = None) -> dict[int, str]:
    """Runs of a dead worker sent again (once) or failed; lost messages resent."""
    return MachineJudgeRun.objects.select_related("collection").recover_lost(
        recover=_recover, send=send_judge_run, now=now,
        resend_after=timedelta(seconds=float(getattr(settings, "MACHINE_JUDGE_RESEND_AFTER", RESEND_AFTER))))


def _recover(run: MachineJudgeRun, *, gone: bool, now: datetime) -> str | None:
    if gone and run.attempts < MAX_ATTEMPTS:
        requeued = MachineJudgeRun.objects.requeue(
            run, now=now, error=f"attempt {run.attempts} stopped with its worker; sent again")
        return "requeued" if requeued else None
    error = f"the worker stopped during each of {run.attempts} attempts; not retried again"
    failed = MachineJudgeRun.objects.owned_by_attempt(run.pk, run.attempts).update(
        status=MachineJudgeRun.Status.FAILED, error=error, finished_at=now)
    return "failed" if failed else None
