"""Recording grades: saved at once, idempotent, every change kept, undo without deleting."""
from __future__ import annotations

import threading

import pytest

from annotate.judging import assignment
from annotate.judging import services as judging
from annotate.models import Candidate, Judgment, JudgmentRevision

from .factories import make_annotators, make_collection

pytestmark = pytest.mark.django_db


@pytest.fixture
def task():
    collection = make_collection(queries=1, candidates=3, k=2)
    ann, other = make_annotators(collection, 2)
    lease = assignment.next_task(collection=collection, annotator=ann)
    candidates = [Candidate.objects.get(pk=cid) for cid in assignment.task_candidate_ids(lease)]
    return ann, other, lease, candidates


def test_a_double_submit_stores_one_judgment_and_one_revision(task):
    ann, _, _, (cand, *_) = task
    first = judging.record_judgment(annotator=ann, candidate=cand, grade=2, idempotency_key="k1", seconds_spent=4.5)
    again = judging.record_judgment(annotator=ann, candidate=cand, grade=2, idempotency_key="k1", seconds_spent=4.5)
    assert first.created and not again.created
    assert Judgment.objects.filter(candidate=cand, annotator=ann).count() == 1
    assert JudgmentRevision.objects.filter(judgment=first.judgment).count() == 1
    assert Judgment.objects.get(candidate=cand, annotator=ann).seconds_spent == 4.5


def test_every_change_is_kept_as_a_revision(task):
    ann, _, lease, (cand, *_) = task
    judging.record_judgment(annotator=ann, candidate=cand, grade=1, idempotency_key="a")
    judging.record_judgment(annotator=ann, candidate=cand, grade=3, idempotency_key="b")
    judgment = Judgment.objects.get(candidate=cand, annotator=ann)
    assert judgment.grade == 3
    history = list(judgment.revisions.values_list("old_grade", "new_grade"))
    assert history == [(None, 1), (1, 3)]
    assert judgment.guideline_version == lease.collection.guideline_version


def test_undo_restores_the_previous_grade_then_withdraws_the_first(task):
    ann, _, lease, (cand, *_) = task
    judging.record_judgment(annotator=ann, candidate=cand, grade=1, idempotency_key="a")
    judging.record_judgment(annotator=ann, candidate=cand, grade=3, idempotency_key="b")
    assert judging.undo_last(annotator=ann, lease=lease, idempotency_key="u1").grade == 1
    withdrawn = judging.undo_last(annotator=ann, lease=lease, idempotency_key="u2")
    assert withdrawn.withdrawn and withdrawn.grade is None
    assert judging.undo_last(annotator=ann, lease=lease, idempotency_key="u3") is None
    assert Judgment.objects.filter(candidate=cand).count() == 1  # nothing deleted
    assert JudgmentRevision.objects.filter(judgment=withdrawn).count() == 4
    # An undone candidate is not judged: the task cannot be finished with it.
    with pytest.raises(assignment.AssignmentError):
        assignment.finish_task(lease=lease)


def test_a_repeated_undo_request_undoes_once(task):
    ann, _, lease, (cand, *_) = task
    judging.record_judgment(annotator=ann, candidate=cand, grade=1, idempotency_key="a")
    judging.record_judgment(annotator=ann, candidate=cand, grade=2, idempotency_key="b")
    judging.undo_last(annotator=ann, lease=lease, idempotency_key="u")
    judging.undo_last(annotator=ann, lease=lease, idempotency_key="u")
    assert Judgment.objects.get(candidate=cand).grade == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"grade": 4}, "outside 0..3"),
        ({"grade": -1}, "outside 0..3"),
        ({"grade": "2"}, "must be an integer"),
        ({"grade": True}, "must be an integer"),
        ({"grade": None, "skipped": True}, "needs a reason"),
        ({"grade": 2, "skipped": True, "skip_reason": "x"}, "no grade"),
        ({"grade": 2, "seconds_spent": -3}, "seconds_spent"),
        ({"grade": 2, "idempotency_key": ""}, "idempotency_key"),
        ({"grade": 2, "note": "x" * 6000}, "note"),
    ],
)
def test_bad_grades_are_refused_with_the_reason(task, kwargs, message):
    ann, _, _, (cand, *_) = task
    kwargs = {"idempotency_key": "k", **kwargs}
    with pytest.raises(judging.JudgingError, match=message):
        judging.record_judgment(annotator=ann, candidate=cand, **kwargs)
    assert not Judgment.objects.exists()


def test_nobody_grades_a_candidate_outside_their_task(task):
    _, other, _, (cand, *_) = task
    with pytest.raises(judging.JudgingError, match="not in a task you hold"):
        judging.record_judgment(annotator=other, candidate=cand, grade=2, idempotency_key="z")


def test_a_note_and_a_flag_need_a_grade_first(task):
    ann, _, _, (cand, *_) = task
    with pytest.raises(judging.JudgingError, match="before adding a note"):
        judging.annotate_candidate(annotator=ann, candidate=cand, note="unclear")
    judging.record_judgment(annotator=ann, candidate=cand, grade=0, idempotency_key="g")
    judgment = judging.annotate_candidate(annotator=ann, candidate=cand, note="spam page", flagged=True)
    assert judgment.flagged and judgment.note == "spam page"


def test_a_regrade_keeps_the_note_and_flag_and_adds_the_time(task):
    ann, _, _, (cand, *_) = task
    judging.record_judgment(annotator=ann, candidate=cand, grade=1, idempotency_key="a", note="off topic",
                            flagged=True, seconds_spent=3.0)
    edited = judging.record_judgment(annotator=ann, candidate=cand, grade=2, idempotency_key="b", seconds_spent=1.5)
    stored = Judgment.objects.get(candidate=cand, annotator=ann)
    assert (stored.grade, stored.note, stored.flagged, stored.seconds_spent) == (2, "off topic", True, 4.5)
    assert edited.created and edited.judgment.pk == stored.pk and edited.judgment.grade == 2


def test_a_skip_then_a_grade_clears_the_skip_and_keeps_both_revisions(task):
    ann, _, _, (cand, *_) = task
    judging.record_judgment(annotator=ann, candidate=cand, grade=None, skipped=True, skip_reason=" broken page ",
                            idempotency_key="s")
    assert Judgment.objects.get(candidate=cand).skip_reason == "broken page"
    judging.record_judgment(annotator=ann, candidate=cand, grade=0, idempotency_key="g")
    stored = Judgment.objects.get(candidate=cand)
    assert (stored.grade, stored.skipped, stored.skip_reason) == (0, False, "")
    assert list(stored.revisions.values_list("old_grade", "old_skipped", "new_grade", "new_skipped", "reason")) == [
        (None, False, None, True, "skip"), (None, True, 0, False, "grade")]


def test_a_repeated_key_returns_the_judgment_as_it_stands_and_writes_nothing(task):
    ann, _, _, (cand, *_) = task
    judging.record_judgment(annotator=ann, candidate=cand, grade=1, idempotency_key="a")
    judging.record_judgment(annotator=ann, candidate=cand, grade=3, idempotency_key="b")
    again = judging.record_judgment(annotator=ann, candidate=cand, grade=1, idempotency_key="a")
    assert not again.created and again.judgment.grade == 3
    assert JudgmentRevision.objects.filter(judgment__candidate=cand).count() == 2


@pytest.mark.parametrize("second", [
    {"grade": 3},  # another grade
    {"grade": None, "skipped": True, "skip_reason": "broken page"},  # a skip
    {"other_candidate": True, "grade": 1},  # another candidate
])
def test_a_key_reused_for_a_different_action_is_a_conflict_and_changes_nothing(task, second):
    ann, _, _, (cand, other, *_) = task
    judging.record_judgment(annotator=ann, candidate=cand, grade=1, idempotency_key="a")
    second = dict(second)
    target = other if second.pop("other_candidate", False) else cand
    with pytest.raises(judging.IdempotencyConflict, match="'a' was already used for a different action"):
        judging.record_judgment(annotator=ann, candidate=target, idempotency_key="a", **second)
    assert list(Judgment.objects.values_list("candidate_id", "grade", "skipped")) == [(cand.pk, 1, False)]
    assert JudgmentRevision.objects.count() == 1


def test_an_undo_key_reused_for_a_grade_is_a_conflict(task):
    ann, _, lease, (cand, *_) = task
    judging.record_judgment(annotator=ann, candidate=cand, grade=1, idempotency_key="a")
    judging.undo_last(annotator=ann, lease=lease, idempotency_key="u")
    with pytest.raises(judging.IdempotencyConflict, match="action 'undo', now 'grade'"):
        judging.record_judgment(annotator=ann, candidate=cand, grade=2, idempotency_key="u")


def _submit(user_id, candidate_id, key, grade, results, errors, barrier):
    from django.contrib.auth import get_user_model
    from django.db import connection

    try:
        user = get_user_model().objects.get(pk=user_id)
        candidate = Candidate.objects.get(pk=candidate_id)
        barrier.wait(10)
        results.append(judging.safe_record(annotator=user, candidate=candidate, grade=grade, idempotency_key=key))
    except Exception as exc:  # surfaced by the test thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_the_same_grade_sent_at_once_from_six_connections_is_stored_once():
    collection = make_collection(queries=1, candidates=3, k=2)
    (ann,) = make_annotators(collection, 1)
    lease = assignment.next_task(collection=collection, annotator=ann)
    cid = assignment.task_candidate_ids(lease)[0]
    results, errors, barrier = [], [], threading.Barrier(6)
    threads = [threading.Thread(target=_submit, args=(ann.pk, cid, "same-key", 2, results, errors, barrier))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(r.created for r in results) == [False] * 5 + [True]
    assert Judgment.objects.filter(candidate_id=cid, annotator=ann).count() == 1
    assert JudgmentRevision.objects.filter(judgment__candidate_id=cid).count() == 1
