"""Recording grades: every grade is saved at once, every change is kept, a repeated request is a no-op.

A person may grade a candidate only while they hold an active lease on its query that hands them
that candidate (annotate/assignment.py); the check and the write happen under the query's row
lock, the same lock assignment takes, so a lease cannot expire half-way through a grade.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import assignment, quality_tasks
from .models import GRADE_MAX, GRADE_MIN, Candidate, Judgment, JudgmentRevision, Lease, Query

MAX_NOTE_CHARS = 5000
MAX_SKIP_REASON_CHARS = 500
MAX_SECONDS_PER_ACTION = 24 * 3600
MAX_IDEMPOTENCY_KEY_CHARS = 100


class JudgingError(Exception):
    """A grade that cannot be recorded; the message names the problem."""


class NotInTask(JudgingError):
    """The candidate is not in an open task of this annotator (a state conflict, not bad input)."""


@dataclass(frozen=True)
class Recorded:
    judgment: Judgment
    created: bool  # False when the request repeated an earlier one (same idempotency key)


def _validate(*, grade, skipped: bool, skip_reason: str, note, seconds_spent, idempotency_key: str) -> None:
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise JudgingError("idempotency_key is required (a unique string per grading action)")
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise JudgingError(f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters")
    if skipped:
        if grade is not None:
            raise JudgingError("a skipped candidate has no grade: send grade=null with skipped=true")
        if not skip_reason or not skip_reason.strip():
            raise JudgingError("a skip needs a reason")
        if len(skip_reason) > MAX_SKIP_REASON_CHARS:
            raise JudgingError(f"the skip reason is longer than {MAX_SKIP_REASON_CHARS} characters")
    else:
        if isinstance(grade, bool) or not isinstance(grade, int):
            raise JudgingError(f"grade must be an integer {GRADE_MIN}..{GRADE_MAX}, got {grade!r}")
        if not GRADE_MIN <= grade <= GRADE_MAX:
            raise JudgingError(f"grade {grade} is outside {GRADE_MIN}..{GRADE_MAX}")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise JudgingError(f"the note is longer than {MAX_NOTE_CHARS} characters")
    if seconds_spent is not None:
        if isinstance(seconds_spent, bool) or not isinstance(seconds_spent, (int, float)):
            raise JudgingError("seconds_spent must be a number")
        if not 0 <= seconds_spent <= MAX_SECONDS_PER_ACTION:
            raise JudgingError(f"seconds_spent {seconds_spent} is outside 0..{MAX_SECONDS_PER_ACTION}")


def _open_lease_for(*, annotator, candidate: Candidate) -> Lease:
    """The annotator's active lease that hands them this candidate; the query row is locked."""
    Query.objects.select_for_update().filter(pk=candidate.query_id).first()
    lease = (
        Lease.objects.select_related("collection")
        .filter(query_id=candidate.query_id, annotator=annotator, status=Lease.Status.ACTIVE).first()
    )
    if lease is None or candidate.pk not in lease.items:
        raise NotInTask("this candidate is not in a task you hold (it may have expired: ask for the next task)")
    return lease


def _repeat(annotator, idempotency_key: str) -> Judgment | None:
    revision = (
        JudgmentRevision.objects.filter(changed_by=annotator, idempotency_key=idempotency_key)
        .select_related("judgment").first()
    )
    return revision.judgment if revision else None


@transaction.atomic
def record_judgment(
    *,
    annotator,
    candidate: Candidate,
    grade: int | None,
    idempotency_key: str,
    skipped: bool = False,
    skip_reason: str = "",
    note: str | None = None,
    flagged: bool | None = None,
    seconds_spent: float | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Save a grade (or a skip) of one candidate by one annotator, keeping the old value as a revision."""
    _validate(grade=grade, skipped=skipped, skip_reason=skip_reason, note=note,
              seconds_spent=seconds_spent, idempotency_key=idempotency_key)
    now = now or timezone.now()
    lease = _open_lease_for(annotator=annotator, candidate=candidate)
    # Checked under the query's lock, so a concurrent copy of this request is seen once it committed.
    repeated = _repeat(annotator, idempotency_key)
    if repeated is not None:
        return Recorded(repeated, created=False)
    judgment = Judgment.objects.filter(candidate=candidate, annotator=annotator).first()
    old_grade, old_skipped = (judgment.grade, judgment.skipped) if judgment else (None, False)
    if judgment is None:
        judgment = Judgment(collection_id=candidate.collection_id, candidate=candidate, annotator=annotator)
    judgment.grade = None if skipped else grade
    judgment.skipped = skipped
    judgment.skip_reason = skip_reason.strip() if skipped else ""
    judgment.withdrawn = False
    judgment.guideline_version = lease.collection.guideline_version
    if note is not None:
        judgment.note = note
    if flagged is not None:
        judgment.flagged = flagged
    if seconds_spent is not None:
        judgment.seconds_spent = (judgment.seconds_spent or 0.0) + float(seconds_spent)
    judgment.save()
    JudgmentRevision.objects.create(
        judgment=judgment, changed_by=annotator, old_grade=old_grade, new_grade=judgment.grade,
        old_skipped=old_skipped, new_skipped=judgment.skipped, idempotency_key=idempotency_key,
        reason="skip" if skipped else "grade",
    )
    assignment.renew(lease, now=now)
    if old_grade is None and not old_skipped:  # a new judgment (not an edit): may be time for a report
        transaction.on_commit(partial(quality_tasks.maybe_schedule_report, candidate.collection_id,
                                      every=lease.collection.agreement_every))
    return Recorded(judgment, created=True)


@transaction.atomic
def annotate_candidate(*, annotator, candidate: Candidate, note: str | None = None, flagged: bool | None = None) -> Judgment:
    """Set the note or the flag of a candidate already graded or skipped in an open task."""
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise JudgingError(f"the note is longer than {MAX_NOTE_CHARS} characters")
    _open_lease_for(annotator=annotator, candidate=candidate)
    judgment = Judgment.objects.filter(candidate=candidate, annotator=annotator, withdrawn=False).first()
    if judgment is None:
        raise JudgingError("grade or skip the candidate before adding a note or a flag")
    if note is not None:
        judgment.note = note
    if flagged is not None:
        judgment.flagged = flagged
    judgment.save(update_fields=["note", "flagged", "updated_at"])
    return judgment


@transaction.atomic
def undo_last(*, annotator, lease: Lease, idempotency_key: str, now: datetime | None = None) -> Judgment | None:
    """Undo the annotator's latest change in this task: back to the previous grade, or to none.

    Nothing is deleted: the undo is itself a revision, and an undone first grade leaves its row
    marked withdrawn. Returns the judgment changed, or None when there is nothing to undo.
    """
    if not idempotency_key:
        raise JudgingError("idempotency_key is required")
    repeated = _repeat(annotator, idempotency_key)
    if repeated is not None:
        return repeated
    Query.objects.select_for_update().filter(pk=lease.query_id).first()
    lease = Lease.objects.get(pk=lease.pk)
    if lease.annotator_id != annotator.pk or lease.status != Lease.Status.ACTIVE:
        raise JudgingError("this task is not open for you")
    last = (
        JudgmentRevision.objects.filter(
            changed_by=annotator, judgment__candidate_id__in=lease.items, judgment__annotator=annotator,
        )
        .exclude(reason__in=["undo", "undone"])
        .select_related("judgment")
        .order_by("-changed_at", "-pk")
        .first()
    )
    if last is None:
        return None
    judgment = last.judgment
    current = (judgment.grade, judgment.skipped, judgment.withdrawn)
    judgment.grade, judgment.skipped = last.old_grade, last.old_skipped
    judgment.withdrawn = last.old_grade is None and not last.old_skipped
    if not judgment.skipped:
        judgment.skip_reason = ""
    judgment.save()
    JudgmentRevision.objects.create(
        judgment=judgment, changed_by=annotator, old_grade=current[0], new_grade=judgment.grade,
        old_skipped=current[1], new_skipped=judgment.skipped, idempotency_key=idempotency_key, reason="undo",
    )
    # An undone change must not be undone twice: mark the undone revision as consumed.
    JudgmentRevision.objects.filter(pk=last.pk).update(reason="undone")
    assignment.renew(lease, now=now)
    return judgment


def safe_record(**kwargs) -> Recorded:
    """record_judgment, resolving the race of two identical first grades hitting the unique constraint."""
    try:
        return record_judgment(**kwargs)
    except IntegrityError:
        repeated = _repeat(kwargs["annotator"], kwargs["idempotency_key"])
        if repeated is not None:
            return Recorded(repeated, created=False)
        return record_judgment(**kwargs)
