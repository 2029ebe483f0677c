"""Recording grades: every grade is saved at once, every change is kept, a repeated request is a no-op.

A person may grade a candidate only while they hold an active lease on its query that hands them
that candidate (annotate/judging/assignment.py); the check and the write happen under the query's row
lock, the same lock assignment takes, so a lease cannot expire half-way through a grade.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import (
    GRADE_MAX,
    GRADE_MIN,
    Candidate,
    Collection,
    Judgment,
    JudgmentRevision,
    Lease,
)
from ..quality import tasks as quality_tasks
from . import assignment

MAX_NOTE_CHARS = 5000
MAX_SKIP_REASON_CHARS = 500
MAX_SECONDS_PER_ACTION = 24 * 3600
MAX_IDEMPOTENCY_KEY_CHARS = 100


class JudgingError(Exception):
    """A grade that cannot be recorded; the message names the problem."""


class NotInTask(JudgingError):
    """The candidate is not in an open task of this annotator (a state conflict, not bad input)."""


class IdempotencyConflict(JudgingError):
    """A key already used for a different action: the retry of one request must repeat it exactly,
    or the new grade would be dropped while the client is told it was saved."""


@dataclass(frozen=True)
class Recorded:
    judgment: Judgment
    created: bool  # False when the request repeated an earlier one (same idempotency key)


def _validate(*, grade, skipped: bool, skip_reason: str, note, seconds_spent, idempotency_key: str) -> None:
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise JudgingError(_("idempotency_key is required (a unique string per grading action)"))
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise JudgingError(_("idempotency_key is longer than %(max)d characters") % {"max": MAX_IDEMPOTENCY_KEY_CHARS})
    if skipped:
        if grade is not None:
            raise JudgingError(_("a skipped candidate has no grade: send grade=null with skipped=true"))
        if not skip_reason or not skip_reason.strip():
            raise JudgingError(_("a skip needs a reason"))
        if len(skip_reason) > MAX_SKIP_REASON_CHARS:
            raise JudgingError(_("the skip reason is longer than %(max)d characters") % {"max": MAX_SKIP_REASON_CHARS})
    else:
        if isinstance(grade, bool) or not isinstance(grade, int):
            raise JudgingError(_("grade must be an integer %(low)d..%(high)d, got %(value)s")
                               % {"low": GRADE_MIN, "high": GRADE_MAX, "value": repr(grade)})
        if not GRADE_MIN <= grade <= GRADE_MAX:
            raise JudgingError(_("grade %(grade)d is outside %(low)d..%(high)d")
                               % {"grade": grade, "low": GRADE_MIN, "high": GRADE_MAX})
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise JudgingError(_note_too_long())
    if seconds_spent is not None:
        if isinstance(seconds_spent, bool) or not isinstance(seconds_spent, (int, float)):
            raise JudgingError(_("seconds_spent must be a number"))
        if not 0 <= seconds_spent <= MAX_SECONDS_PER_ACTION:
            raise JudgingError(_("seconds_spent %(value)s is outside 0..%(max)d")
                               % {"value": seconds_spent, "max": MAX_SECONDS_PER_ACTION})


def _note_too_long() -> str:
    return _("the note is longer than %(max)d characters") % {"max": MAX_NOTE_CHARS}


@dataclass(frozen=True)
class OpenTask:
    """What recording a grade needs of the lease it is given under (read with the query locked)."""

    lease_id: int
    items: list[int]
    pinned: bool
    guideline_version: str
    agreement_every: int
    lease_minutes: int

    def expiry(self, now: datetime) -> datetime | None:
        """The renewed expiry: activity keeps a lease alive; a pinned lease never expires."""
        return Lease.expiry(now, lease_minutes=self.lease_minutes, pinned=self.pinned)


# Plain SQL on the grade's hot path: the statement is fixed, and building it through the ORM costs
# more CPU than running it.
_OPEN_TASK_SQL = f"""
SELECT l.id, l.items, l.pinned, c.guideline_version, c.agreement_every, c.lease_minutes
FROM {Lease._meta.db_table} l JOIN {Collection._meta.db_table} c ON c.id = l.collection_id
WHERE l.query_id = %s AND l.annotator_id = %s AND l.status = %s
"""


def _open_lease_for(*, annotator, candidate: Candidate) -> OpenTask:
    """The annotator's active lease that hands them this candidate; the query row is locked."""
    assignment.lock_query(candidate.query_id)
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_TASK_SQL, [candidate.query_id, annotator.pk, Lease.Status.ACTIVE])
        row = cursor.fetchone()
    if row is not None:
        lease_id, items, pinned, version, every, minutes = row
        task = OpenTask(lease_id, json.loads(items) if isinstance(items, str) else items, pinned, version, every, minutes)
        if candidate.pk in task.items:
            return task
    raise NotInTask(_("this candidate is not in a task you hold (it may have expired: ask for the next task)"))


def _repeat(annotator, idempotency_key: str) -> Judgment | None:
    """The judgment an earlier request with this key changed (annotator: a user or a user id)."""
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
    """Save a grade (or a skip) of one candidate by one annotator, keeping the old value as a revision.

    Only `pk`, `query_id` and `collection_id` of `candidate` are read, so a caller that knows them
    (the API, from the lease) need not load the row.
    """
    _validate(grade=grade, skipped=skipped, skip_reason=skip_reason, note=note,
              seconds_spent=seconds_spent, idempotency_key=idempotency_key)
    now = now or timezone.now()
    task = _open_lease_for(annotator=annotator, candidate=candidate)
    change = _Change(
        grade=None if skipped else grade, skipped=skipped, skip_reason=skip_reason.strip() if skipped else "",
        note=note, flagged=flagged, seconds_spent=None if seconds_spent is None else float(seconds_spent),
        idempotency_key=idempotency_key, reason="skip" if skipped else "grade",
    )
    save = _save_in_one_statement if connection.vendor == "postgresql" else _save_with_orm
    # Both check the idempotency key after the query's lock was taken, so a concurrent copy of this
    # request is seen once it committed.
    judgment, outcome = save(annotator_id=annotator.pk, candidate=candidate, task=task, change=change, now=now)
    if outcome == _REPEATED:
        _check_same_action(annotator.pk, candidate, change)
        return Recorded(judgment, created=False)
    if outcome == _NEW:  # a new judgment (not an edit): may be time for a report
        transaction.on_commit(partial(quality_tasks.maybe_schedule_report, candidate.collection_id,
                                      every=task.agreement_every))
    return Recorded(judgment, created=True)


def _check_same_action(annotator_id: int, candidate: Candidate, change: "_Change") -> None:
    """Raise IdempotencyConflict unless the earlier request with this key did what this one asks."""
    revision = (JudgmentRevision.objects.filter(changed_by_id=annotator_id, idempotency_key=change.idempotency_key)
                .select_related("judgment").only("reason", "new_grade", "new_skipped", "judgment__candidate_id")
                .first())
    if revision is None:
        return
    earlier = {"candidate": revision.judgment.candidate_id, "action": revision.reason,
               "grade": revision.new_grade, "skipped": revision.new_skipped}
    asked = {"candidate": candidate.pk, "action": change.reason, "grade": change.grade, "skipped": change.skipped}
    differing = [name for name in earlier if earlier[name] != asked[name]]
    if differing:
        changes = ", ".join(_("%(field)s %(before)s, now %(after)s")
                            % {"field": name, "before": repr(earlier[name]), "after": repr(asked[name])}
                            for name in differing)
        raise IdempotencyConflict(
            _("idempotency_key %(key)s was already used for a different action (%(changes)s); "
              "a retry must repeat its request exactly, a new action needs a new key")
            % {"key": repr(change.idempotency_key), "changes": changes})


@dataclass(frozen=True)
class _Change:
    grade: int | None
    skipped: bool
    skip_reason: str
    note: str | None  # None: keep the current note
    flagged: bool | None  # None: keep the current flag
    seconds_spent: float | None  # added to the time already spent
    idempotency_key: str
    reason: str


_NEW, _EDITED, _REPEATED = "new", "edited", "repeated"  # what a save did


def _save_with_orm(*, annotator_id: int, candidate: Candidate, task: OpenTask, change: _Change, now: datetime):
    """Check the key, read the judgment, write it, add the revision, renew the lease (any database).
    Returns (judgment, what happened: _NEW, _EDITED or _REPEATED)."""
    repeated = _repeat(annotator_id, change.idempotency_key)
    if repeated is not None:
        return repeated, _REPEATED
    judgment = Judgment.objects.filter(candidate_id=candidate.pk, annotator_id=annotator_id).first()
    old_grade, old_skipped = (judgment.grade, judgment.skipped) if judgment else (None, False)
    if judgment is None:
        judgment = Judgment(collection_id=candidate.collection_id, candidate_id=candidate.pk, annotator_id=annotator_id)
    judgment.grade = change.grade
    judgment.skipped = change.skipped
    judgment.skip_reason = change.skip_reason
    judgment.withdrawn = False
    judgment.guideline_version = task.guideline_version
    if change.note is not None:
        judgment.note = change.note
    if change.flagged is not None:
        judgment.flagged = change.flagged
    if change.seconds_spent is not None:
        judgment.seconds_spent = (judgment.seconds_spent or 0.0) + change.seconds_spent
    judgment.save()
    JudgmentRevision.objects.create(
        judgment=judgment, changed_by_id=annotator_id, old_grade=old_grade, new_grade=judgment.grade,
        old_skipped=old_skipped, new_skipped=judgment.skipped, idempotency_key=change.idempotency_key,
        reason=change.reason,
    )
    Lease.objects.renew(task.lease_id, now=now, lease_minutes=task.lease_minutes)
    return judgment, _EDITED if old_grade is not None or old_skipped else _NEW


_JUDGMENT_FIELDS = Judgment._meta.concrete_fields

# _save_with_orm in one round trip (PostgreSQL's data-modifying CTEs). Every part sees the snapshot
# taken when the statement starts, after the query's lock was granted: `repeated` sees a committed
# copy of this request, `previous` is the row before the upsert, and nobody else writes that row
# meanwhile, since every writer of a judgment holds its query's lock. A repeated key writes nothing
# and returns the judgment as it stands.
_SAVE_SQL = f"""
WITH repeated AS (
    SELECT judgment_id FROM {JudgmentRevision._meta.db_table}
    WHERE changed_by_id = %(annotator)s AND idempotency_key = %(key)s
), previous AS (
    SELECT grade, skipped FROM {Judgment._meta.db_table}
    WHERE candidate_id = %(candidate)s AND annotator_id = %(annotator)s
), saved AS (
    INSERT INTO {Judgment._meta.db_table} AS j (collection_id, candidate_id, annotator_id, source, grade, skipped,
        skip_reason, flagged, withdrawn, note, seconds_spent, guideline_version, created_at, updated_at)
    SELECT %(collection)s, %(candidate)s, %(annotator)s, '', %(grade)s, %(skipped)s, %(skip_reason)s,
        COALESCE(%(flagged)s, false), false, COALESCE(%(note)s, ''), %(seconds)s, %(version)s, %(now)s, %(now)s
    WHERE NOT EXISTS (SELECT 1 FROM repeated)
    ON CONFLICT (candidate_id, annotator_id) WHERE annotator_id IS NOT NULL DO UPDATE SET
        grade = EXCLUDED.grade, skipped = EXCLUDED.skipped, skip_reason = EXCLUDED.skip_reason, withdrawn = false,
        guideline_version = EXCLUDED.guideline_version, updated_at = EXCLUDED.updated_at,
        note = COALESCE(%(note)s, j.note), flagged = COALESCE(%(flagged)s, j.flagged),
        seconds_spent = CASE WHEN %(seconds)s::float8 IS NULL THEN j.seconds_spent
                             ELSE COALESCE(j.seconds_spent, 0) + %(seconds)s::float8 END
    RETURNING {", ".join(f"j.{f.column}" for f in _JUDGMENT_FIELDS)}
), revision AS (
    INSERT INTO {JudgmentRevision._meta.db_table} (judgment_id, changed_by_id, changed_by_source, changed_at,
        old_grade, new_grade, old_skipped, new_skipped, reason, idempotency_key)
    SELECT saved.id, %(annotator)s, '', %(now)s, previous.grade, saved.grade, COALESCE(previous.skipped, false),
        saved.skipped, %(reason)s, %(key)s
    FROM saved LEFT JOIN previous ON true
), renewed AS (
    UPDATE {Lease._meta.db_table} SET expires_at = %(expires)s
    WHERE id = %(lease)s AND status = %(active)s AND NOT pinned AND EXISTS (SELECT 1 FROM saved)
)
SELECT saved.*, CASE WHEN previous.grade IS NOT NULL OR previous.skipped THEN %(edited)s ELSE %(new)s END
FROM saved LEFT JOIN previous ON true
UNION ALL
SELECT {", ".join(f"j.{f.column}" for f in _JUDGMENT_FIELDS)}, %(repeated_)s
FROM {Judgment._meta.db_table} j JOIN repeated ON j.id = repeated.judgment_id
"""


def _save_in_one_statement(*, annotator_id: int, candidate: Candidate, task: OpenTask, change: _Change, now: datetime):
    """_save_with_orm in one statement: the grade's hot path on PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute(_SAVE_SQL, {
            "collection": candidate.collection_id, "candidate": candidate.pk, "annotator": annotator_id,
            "grade": change.grade, "skipped": change.skipped, "skip_reason": change.skip_reason,
            "flagged": change.flagged, "note": change.note, "seconds": change.seconds_spent,
            "version": task.guideline_version, "now": now, "reason": change.reason, "key": change.idempotency_key,
            "lease": task.lease_id, "active": Lease.Status.ACTIVE, "expires": task.expiry(now),
            "new": _NEW, "edited": _EDITED, "repeated_": _REPEATED,
        })
        *values, outcome = cursor.fetchone()
    return Judgment.from_db(connection.alias, [f.attname for f in _JUDGMENT_FIELDS], values), outcome


@transaction.atomic
def annotate_candidate(*, annotator, candidate: Candidate, note: str | None = None, flagged: bool | None = None) -> Judgment:
    """Set the note or the flag of a candidate already graded or skipped in an open task."""
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise JudgingError(_note_too_long())
    _open_lease_for(annotator=annotator, candidate=candidate)
    judgment = Judgment.objects.standing().filter(candidate=candidate, annotator=annotator).first()
    if judgment is None:
        raise JudgingError(_("grade or skip the candidate before adding a note or a flag"))
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
        raise JudgingError(_("idempotency_key is required"))
    repeated = _repeat(annotator, idempotency_key)
    if repeated is not None:
        return repeated
    assignment.lock_query(lease.query_id)
    lease = Lease.objects.select_related("collection").get(pk=lease.pk)
    if lease.annotator_id != annotator.pk or lease.status != Lease.Status.ACTIVE:
        raise JudgingError(_("this task is not open for you"))
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
            # The race's winner was this request's twin -- or a different action under the same key.
            return record_judgment(**kwargs)
        return record_judgment(**kwargs)
