"""Assignment: k judges per candidate, leases that expire, pinned work — enforced under concurrency."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotate.judging import assignment
from annotate.judging import services as judging
from annotate.models import Candidate, Judgment, Lease, Query

from .factories import make_annotators, make_collection

pytestmark = pytest.mark.django_db


def grade_all(user, lease, grade=2, prefix=""):
    for cid in assignment.task_candidate_ids(lease):
        judging.record_judgment(annotator=user, candidate=Candidate.objects.get(pk=cid), grade=grade,
                                idempotency_key=f"{prefix}{user.pk}-{cid}")


def test_asking_twice_resumes_the_same_task():
    collection = make_collection(queries=2, candidates=3, k=1)
    (ann,) = make_annotators(collection, 1)
    first = assignment.next_task(collection=collection, annotator=ann)
    again = assignment.next_task(collection=collection, annotator=ann)
    assert first.pk == again.pk
    assert len(first.items) == 3


def test_no_query_is_handed_to_more_than_k_annotators():
    collection = make_collection(queries=2, candidates=3, k=2)
    users = make_annotators(collection, 5)
    leases = [assignment.next_task(collection=collection, annotator=u) for u in users]
    taken = [lease.query_id for lease in leases if lease is not None]
    assert len(taken) == 4  # 2 queries x k=2
    assert leases[4] is None
    assert max(taken.count(q) for q in set(taken)) == 2
    assert not Candidate.objects.filter(coverage__gt=2).exists()


def test_fewest_holders_first():
    collection = make_collection(queries=3, candidates=2, k=3)
    users = make_annotators(collection, 3)
    taken = {assignment.next_task(collection=collection, annotator=u).query_id for u in users}
    assert len(taken) == 3  # each query gets its first judge before any gets a second


def test_an_annotator_never_gets_a_query_they_finished():
    collection = make_collection(queries=2, candidates=2, k=3)
    (ann,) = make_annotators(collection, 1)
    seen = []
    while (lease := assignment.next_task(collection=collection, annotator=ann)) is not None:
        grade_all(ann, lease)
        assignment.finish_task(lease=lease)
        seen.append(lease.query_id)
    assert sorted(seen) == sorted(Query.objects.values_list("pk", flat=True))


def test_finishing_needs_every_candidate_graded_or_skipped():
    collection = make_collection(queries=1, candidates=2, k=1)
    (ann,) = make_annotators(collection, 1)
    lease = assignment.next_task(collection=collection, annotator=ann)
    first, second = assignment.task_candidate_ids(lease)
    judging.record_judgment(annotator=ann, candidate=Candidate.objects.get(pk=first), grade=1, idempotency_key="x1")
    with pytest.raises(assignment.AssignmentError, match="1 candidate"):
        assignment.finish_task(lease=lease)
    judging.record_judgment(annotator=ann, candidate=Candidate.objects.get(pk=second), grade=None, skipped=True,
                            skip_reason="page did not load", idempotency_key="x2")
    assert assignment.finish_task(lease=lease).status == Lease.Status.DONE


def test_an_expired_lease_gives_back_only_what_was_not_judged():
    collection = make_collection(queries=1, candidates=4, k=1, lease_minutes=30)
    first, second = make_annotators(collection, 2)
    lease = assignment.next_task(collection=collection, annotator=first)
    judged_ids = assignment.task_candidate_ids(lease)[:2]
    for cid in judged_ids:
        judging.record_judgment(annotator=first, candidate=Candidate.objects.get(pk=cid), grade=3, idempotency_key=f"k{cid}")
    assert assignment.next_task(collection=collection, annotator=second) is None  # k=1 and all held
    later = timezone.now() + timedelta(minutes=31)
    taken_over = assignment.next_task(collection=collection, annotator=second, now=later)
    assert taken_over is not None
    assert sorted(taken_over.items) == sorted(set(lease.items) - set(judged_ids))
    assert Lease.objects.get(pk=lease.pk).status == Lease.Status.EXPIRED
    assert not Candidate.objects.filter(coverage__gt=1).exists()


def test_grading_renews_the_lease():
    collection = make_collection(queries=1, candidates=2, k=1, lease_minutes=10)
    first, second = make_annotators(collection, 2)
    lease = assignment.next_task(collection=collection, annotator=first)
    cid = lease.items[0]
    judging.record_judgment(annotator=first, candidate=Candidate.objects.get(pk=cid), grade=1, idempotency_key="r",
                            now=timezone.now() + timedelta(minutes=8))
    # 15 minutes after the lease was taken but 7 after the last grade: still held.
    assert assignment.next_task(collection=collection, annotator=second, now=timezone.now() + timedelta(minutes=15)) is None


def test_a_pinned_query_comes_first_and_does_not_expire():
    collection = make_collection(queries=3, candidates=2, k=1)
    (ann,) = make_annotators(collection, 1)
    target = Query.objects.order_by("-shuffle_key").first()
    assignment.pin_query(query=target, annotator=ann)
    lease = assignment.next_task(collection=collection, annotator=ann, now=timezone.now() + timedelta(days=3))
    assert lease.query_id == target.pk and lease.pinned


def test_pinning_a_full_query_is_refused_with_the_reason():
    collection = make_collection(queries=1, candidates=2, k=1)
    first, second = make_annotators(collection, 2)
    assignment.next_task(collection=collection, annotator=first)
    with pytest.raises(assignment.AssignmentError, match="overlap k=1"):
        assignment.pin_query(query=Query.objects.get(), annotator=second)


def test_each_annotator_sees_their_own_stable_order():
    ids = list(range(1, 30))
    assert assignment.shuffled(ids, annotator_id=1) == assignment.shuffled(ids, annotator_id=1)
    assert assignment.shuffled(ids, annotator_id=1) != assignment.shuffled(ids, annotator_id=2)


def _drain(collection_id, user_id, errors):
    from django.contrib.auth import get_user_model

    from annotate.models import Collection

    try:
        collection = Collection.objects.get(pk=collection_id)
        user = get_user_model().objects.get(pk=user_id)
        while (lease := assignment.next_task(collection=collection, annotator=user)) is not None:
            grade_all(user, lease, grade=user_id % 4)
            assignment.finish_task(lease=lease)
    except Exception as exc:  # surfaced by the test thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_judge_each_candidate_exactly_k_times():
    collection = make_collection(queries=12, candidates=5, k=3)
    users = make_annotators(collection, 8)
    errors: list[Exception] = []
    threads = [threading.Thread(target=_drain, args=(collection.pk, u.pk, errors)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    report = assignment.coverage_report(collection)
    assert report["judges_histogram"] == {3: 60}
    assert report["over_judged"] == 0 and report["duplicates"] == 0 and report["unjudged"] == 0
    assert Judgment.objects.filter(collection=collection).count() == 180
