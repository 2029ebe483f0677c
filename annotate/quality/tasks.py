"""Celery tasks of the agreement report (default queue), and the hook the judging path calls.

- `maybe_schedule_report(collection_id, every=N)`: called on commit of every new judgment; counts it
  in Redis and queues `recompute_report` once per N new judgments (Collection.agreement_every),
  never more than one queued per collection. Cheap (one Redis round trip), and never raises.
- `recompute_report(collection_id, min_new=1)`: one at a time per collection (Redis lock); computes
  and keeps a new AgreementReport unless fewer than `min_new` human judgments arrived since the last
  one (so a redelivered or duplicated message is a no-op); runs once more when asked while busy.
- `nightly_reports()`: from beat (the `annotate: nightly agreement reports` PeriodicTask, created by
  migration 0006): queues a report for every active collection with new judgments since its last.

The task names keep their first module's path ("annotate.quality_tasks.*"): beat's PeriodicTask rows
and messages already queued name them so.
"""
from __future__ import annotations

import logging

from celery import shared_task

from ..models import AgreementReport, Collection
from . import triggers
from .report import store_report
from .selectors import people_grade_count

log = logging.getLogger(__name__)


def maybe_schedule_report(collection_id: int, every: int | None = None) -> bool:
    """Count a new judgment; queue the report task when N have gathered. True when it queued one."""
    if triggers.redis_quiet():
        return False
    try:
        if every is None:
            every = Collection.objects.filter(pk=collection_id).values_list("agreement_every", flat=True).first() or 1
        if not triggers.count_judgment(collection_id, every):
            return False
    except Exception as error:  # Redis down or slow: the grade is saved; the nightly run catches up
        triggers.note_failure(error)
        return False
    try:
        recompute_report.delay(collection_id)
    except Exception as error:
        log.warning("could not queue the agreement report of collection %s: %s", collection_id, error)
        try:
            triggers.clear_queued(collection_id)
        except Exception:
            pass
        return False
    return True


def run_report(collection_id: int, *, min_new: int = 1) -> str:
    """The task's body (callable in-process): 'stored', 'fresh' (nothing new), 'busy' or 'gone'."""
    collection = Collection.objects.filter(pk=collection_id).first()
    if collection is None:
        triggers.clear_queued(collection_id)
        return "gone"
    try:
        with triggers.report_lock(collection_id):
            last = AgreementReport.objects.latest_for(collection)
            count = people_grade_count(collection)
            if last is not None and count - last.n_judgments < min_new:
                outcome = "fresh"
            elif last is None and count == 0 and min_new > 0:
                outcome = "fresh"
            else:
                store_report(collection=collection)
                outcome = "stored"
    except triggers.Busy:
        return "busy"
    triggers.clear_queued(collection_id)
    if triggers.take_again(collection_id) or triggers.pending(collection_id) >= collection.agreement_every:
        if triggers.mark_queued(collection_id):
            recompute_report.delay(collection_id)
    return outcome


@shared_task(name="annotate.quality_tasks.recompute_report", acks_late=True, autoretry_for=(ConnectionError,),
             retry_backoff=True, max_retries=3)
def recompute_report(collection_id: int, min_new: int = 1) -> str:
    return run_report(collection_id, min_new=min_new)


@shared_task(name="annotate.quality_tasks.nightly_reports", acks_late=True)
def nightly_reports() -> list[int]:
    """Queue a report for every active collection whose judgments changed since its last report."""
    queued = []
    for collection in Collection.objects.filter(is_active=True):
        last = AgreementReport.objects.latest_for(collection)
        count = people_grade_count(collection)
        if count and (last is None or count != last.n_judgments) and triggers.mark_queued(collection.pk):
            recompute_report.delay(collection.pk)
            queued.append(collection.pk)
    return queued
