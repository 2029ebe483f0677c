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


# ---- the loop keeps going: re-mined candidates, skips that give their slot back, members who leave ----

def mine_into(query: Query, n: int) -> list[int]:
    """Add n new candidates to a query the way mining does (query row locked, add_proposed); their ids."""
    from django.db import transaction

    from annotate.models import Document

    with transaction.atomic():
        Query.objects.lock([query.pk])
        start = Document.objects.filter(collection_id=query.collection_id).count()
        documents = Document.objects.bulk_create(
            Document(collection_id=query.collection_id, external_id=f"mined{start + i}", text=f"mined {start + i}",
                     content_hash=f"m{start + i}") for i in range(n))
        pairs = [(query.pk, document.pk) for document in documents]
        Candidate.objects.add_proposed(collection_id=query.collection_id, query_pks=[query.pk],
                                       sources={pair: {"bm25": {"rank": i + 1, "score": 1.0}} for i, pair in enumerate(pairs)},
                                       new=pairs)
    return sorted(Candidate.objects.filter(query=query, document__in=documents).values_list("pk", flat=True))


def drain_one(collection, user, *, skip=lambda user_id, candidate_id: False) -> list[int]:
    from .judging_threads import judge_task

    received = []
    while (lease := assignment.next_task(collection=collection, annotator=user)) is not None:
        received.extend(lease.items)
        judge_task(user, lease, skip=skip)
    return sorted(received)


def assert_counters_match_judgments(collection):
    """With no task open, coverage counts each pair's people's grades and offers its grades + skips."""
    assert not Lease.objects.filter(collection=collection, status=Lease.Status.ACTIVE).exists()
    for candidate in Candidate.objects.filter(collection=collection, is_gold=False):
        standing = Judgment.objects.filter(candidate=candidate).by_people().standing()
        assert candidate.coverage == standing.filter(skipped=False).count(), candidate
        assert candidate.offers == standing.count(), candidate


def test_candidates_mined_into_a_finished_query_go_to_annotators_who_have_not_judged_them():
    collection = make_collection(queries=1, candidates=3, k=2)
    first, second, fresh, late, last = make_annotators(collection, 5)
    old = set(Candidate.objects.values_list("pk", flat=True))
    for user in (first, second):
        assert sorted(drain_one(collection, user)) == sorted(old)
    assert assignment.next_task(collection=collection, annotator=fresh) is None  # finished: k=2 done
    new = mine_into(Query.objects.get(), 2)
    assert drain_one(collection, fresh) == new  # just the new ones, not the old
    assert drain_one(collection, late) == new
    assert drain_one(collection, last) == []  # k reached on the new ones too
    report = assignment.coverage_report(collection)
    assert report["judges_histogram"] == {2: 5} and report["over_judged"] == 0
    assert_counters_match_judgments(collection)


def test_an_annotator_who_finished_a_query_gets_it_back_with_just_its_new_candidates():
    collection = make_collection(queries=1, candidates=3, k=2)
    (ann,) = make_annotators(collection, 1)
    finished = assignment.next_task(collection=collection, annotator=ann)
    grade_all(ann, finished)
    assignment.finish_task(lease=finished)
    new = mine_into(Query.objects.get(), 2)
    again = assignment.next_task(collection=collection, annotator=ann)
    assert again.pk == finished.pk and again.status == Lease.Status.ACTIVE
    assert sorted(again.items) == new
    grade_all(ann, again, prefix="again")
    assignment.finish_task(lease=again)
    assert Query.objects.get().holders == 1  # one person, counted once
    assert assignment.next_task(collection=collection, annotator=ann) is None


def test_staff_can_pin_a_finished_query_once_it_has_new_candidates():
    collection = make_collection(queries=1, candidates=2, k=1)
    (ann,) = make_annotators(collection, 1)
    drain_one(collection, ann)
    with pytest.raises(assignment.AssignmentError, match="already finished"):
        assignment.pin_query(query=Query.objects.get(), annotator=ann)
    new = mine_into(Query.objects.get(), 1)
    assert assignment.pin_query(query=Query.objects.get(), annotator=ann).items == new


def test_a_skip_holds_its_slot_while_the_task_is_open_and_gives_it_back_when_it_ends():
    collection = make_collection(queries=1, candidates=2, k=1)
    skipper, other = make_annotators(collection, 2)
    lease = assignment.next_task(collection=collection, annotator=skipper)
    unclear, clear = sorted(lease.items)
    judging.record_judgment(annotator=skipper, candidate=Candidate.objects.get(pk=unclear), grade=None, skipped=True,
                            skip_reason="cannot tell", idempotency_key="s1")
    judging.record_judgment(annotator=skipper, candidate=Candidate.objects.get(pk=clear), grade=2, idempotency_key="s2")
    assert assignment.next_task(collection=collection, annotator=other) is None  # the skipper may still grade it
    assignment.finish_task(lease=lease)
    handed_on = assignment.next_task(collection=collection, annotator=other)
    assert handed_on.items == [unclear]
    grade_all(other, handed_on)
    assignment.finish_task(lease=handed_on)
    assert assignment.coverage_report(collection)["judges_histogram"] == {1: 2}
    assert_counters_match_judgments(collection)


def test_a_pair_everyone_skips_is_offered_to_at_most_k_plus_two_people():
    collection = make_collection(queries=1, candidates=1, k=1)
    users = make_annotators(collection, 5)
    offered = [bool(drain_one(collection, user, skip=lambda user_id, candidate_id: True)) for user in users]
    assert offered == [True, True, True, False, False]  # k + 2 = 3
    candidate = Candidate.objects.get()
    assert (candidate.coverage, candidate.offers) == (0, 3)
    report = assignment.coverage_report(collection)
    assert report["skips"] == 3 and report["offer_violations"] == 0 and report["judges_histogram"] == {}


def test_an_expired_task_gives_back_its_offers_and_its_skipped_slots():
    collection = make_collection(queries=1, candidates=3, k=1, lease_minutes=30)
    (ann,) = make_annotators(collection, 1)
    lease = assignment.next_task(collection=collection, annotator=ann)
    skipped, graded, untouched = sorted(lease.items)
    judging.record_judgment(annotator=ann, candidate=Candidate.objects.get(pk=skipped), grade=None, skipped=True,
                            skip_reason="broken page", idempotency_key="e1")
    judging.record_judgment(annotator=ann, candidate=Candidate.objects.get(pk=graded), grade=1, idempotency_key="e2")
    assignment.expire_stale_leases(collection=collection, now=timezone.now() + timedelta(minutes=31))
    counters = dict((pk, (coverage, offers)) for pk, coverage, offers in Candidate.objects.values_list("pk", "coverage", "offers"))
    assert counters == {skipped: (0, 1), graded: (1, 1), untouched: (0, 0)}


def test_removing_a_member_releases_their_tasks_and_pins_and_keeps_their_judgments():
    from annotate.judging.members import remove_member
    from annotate.models import Membership

    collection = make_collection(queries=2, candidates=2, k=1)
    leaving, staying = make_annotators(collection, 2)
    taken = assignment.next_task(collection=collection, annotator=leaving)
    judged = taken.items[0]
    judging.record_judgment(annotator=leaving, candidate=Candidate.objects.get(pk=judged), grade=3, idempotency_key="l1")
    pinned = assignment.pin_query(query=Query.objects.exclude(pk=taken.query_id).get(), annotator=leaving)
    assert assignment.next_task(collection=collection, annotator=staying) is None  # all held

    assert remove_member(collection=collection, user=leaving) == 2

    assert not Membership.objects.filter(collection=collection, user=leaving).exists()
    assert set(Lease.objects.filter(annotator=leaving).values_list("status", "pinned")) == {(Lease.Status.RELEASED, False)}
    assert Judgment.objects.get(annotator=leaving).candidate_id == judged  # their grade stays
    received = drain_one(collection, staying)
    assert received == sorted(set(taken.items + pinned.items) - {judged})
    assert_counters_match_judgments(collection)


def test_deleting_a_membership_in_the_admin_releases_the_members_tasks(client):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from annotate.models import Membership

    collection = make_collection(queries=1, candidates=2, k=1)
    leaving, staying = make_annotators(collection, 2)
    assignment.next_task(collection=collection, annotator=leaving)
    staff = get_user_model().objects.create_superuser("boss", password="pw-123456789")
    client.force_login(staff)
    membership = Membership.objects.get(collection=collection, user=leaving)
    response = client.post(reverse("admin:annotate_membership_delete", args=[membership.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert len(assignment.next_task(collection=collection, annotator=staying).items) == 2


# ---- the same under concurrency (PostgreSQL row locks; threads with their own connections) ----

@pytest.mark.django_db(transaction=True)
def test_candidates_mined_into_finished_queries_while_people_judge_get_exactly_k_grades():
    from .judging_threads import drain, run_together

    collection = make_collection(queries=6, candidates=3, k=2)
    first_round = make_annotators(collection, 3, prefix="first")
    assert not run_together(*[(drain, (collection.pk, u.pk), {}) for u in first_round])
    old = set(Candidate.objects.values_list("pk", flat=True))
    assert set(Candidate.objects.values_list("coverage", flat=True)) == {2}  # every query finished

    def mine_everywhere(errors):
        try:
            for query in Query.objects.order_by("pk"):
                mine_into(query, 2)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    everyone = first_round + make_annotators(collection, 3, prefix="fresh")
    received: dict = {}
    assert not run_together((mine_everywhere, (), {}),
                            *[(drain, (collection.pk, u.pk), {"received": received}) for u in everyone])
    for user in everyone:  # what mining added after a thread had stopped asking
        drain(collection.pk, user.pk, [], received=received)

    new = set(Candidate.objects.values_list("pk", flat=True)) - old
    assert len(new) == 12
    handed_out = [cid for items in received.values() for cid in items]
    assert set(handed_out) == new  # nobody was handed an old candidate again
    report = assignment.coverage_report(collection)
    assert report["judges_histogram"] == {2: 30}
    assert report["over_judged"] == report["duplicates"] == report["coverage_violations"] == 0
    assert_counters_match_judgments(collection)


@pytest.mark.django_db(transaction=True)
def test_concurrent_skips_give_slots_back_and_no_pair_is_offered_to_more_than_k_plus_two():
    from .judging_threads import drain, run_together

    def skip(user_id, candidate_id):  # a fixed third of the (annotator, pair) decisions are skips
        return (user_id * 7 + candidate_id * 13) % 3 == 0

    collection = make_collection(queries=8, candidates=4, k=2)
    users = make_annotators(collection, 7)
    assert not run_together(*[(drain, (collection.pk, u.pk), {"skip": skip}) for u in users])
    for user in users:  # a slot given back after a thread had stopped asking
        drain(collection.pk, user.pk, [], skip=skip)

    assert_counters_match_judgments(collection)
    judged_by = {}
    for cid, uid, skipped in Judgment.objects.by_people().standing().values_list("candidate_id", "annotator_id", "skipped"):
        judged_by.setdefault(cid, []).append((uid, skipped))
    for candidate in Candidate.objects.all():
        grades = sum(1 for _, skipped in judged_by[candidate.pk] if not skipped)
        assert grades <= 2 and candidate.offers <= 4
        # a pair ends with k grades unless it ran out of offers
        assert grades == 2 or candidate.offers == 4, (candidate.pk, judged_by[candidate.pk])
    assert sum(1 for people in judged_by.values() for _, skipped in people if skipped) > 0
    report = assignment.coverage_report(collection)
    assert report["over_judged"] == report["duplicates"] == report["offer_violations"] == 0


@pytest.mark.django_db(transaction=True)
def test_members_removed_while_others_judge_leave_no_work_blocked():
    from django.contrib.auth import get_user_model

    from annotate.judging.members import remove_member
    from annotate.models import Collection, Membership

    from .judging_threads import drain, run_together

    collection = make_collection(queries=6, candidates=3, k=2)
    leaving = make_annotators(collection, 3, prefix="leaving")
    staying = make_annotators(collection, 3, prefix="staying")
    for user in leaving:  # each holds a task, one grade given
        lease = assignment.next_task(collection=collection, annotator=user)
        judging.record_judgment(annotator=user, candidate=Candidate.objects.get(pk=lease.items[0]), grade=1,
                                idempotency_key=f"{user.pk}-first")
    open_query = Query.objects.exclude(leases__annotator__in=leaving).order_by("pk").first()
    assignment.pin_query(query=open_query, annotator=leaving[0])

    def remove_all(errors):
        try:
            for user in leaving:
                remove_member(collection=Collection.objects.get(pk=collection.pk),
                              user=get_user_model().objects.get(pk=user.pk))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    assert not run_together((remove_all, (), {}), *[(drain, (collection.pk, u.pk), {}) for u in staying])
    for user in staying:  # work released after a thread had stopped asking
        drain(collection.pk, user.pk, [])

    assert not Membership.objects.filter(user__in=leaving).exists()
    assert Judgment.objects.filter(annotator__in=leaving).count() == 3  # their grades stay
    report = assignment.coverage_report(collection)
    assert report["judges_histogram"] == {2: 18} and report["over_judged"] == report["duplicates"] == 0
    assert_counters_match_judgments(collection)
