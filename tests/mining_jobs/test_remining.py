"""The dynamic loop does not stall: a query k people finished gets new mined candidates, and those
(only those) go to annotators who have not judged them, never past k grades per candidate."""
import pytest
from django.contrib.auth import get_user_model

from annotate.judging import assignment
from annotate.models import Candidate, Collection, Lease, Membership
from mining.services import run_job_inline, start_mining
from tests.workbench.judging_threads import drain, run_together


def people(collection, prefix, n):
    users = [get_user_model().objects.create_user(f"{prefix}{i}", password="pw-123456789") for i in range(n)]
    Membership.objects.bulk_create(Membership(collection=collection, user=u) for u in users)
    return users


def mine(collection, negatives):
    job = run_job_inline(start_mining(collection=collection, method="bm25", negatives=negatives, enqueue=False))
    assert job.status == "done"
    return job


@pytest.mark.django_db(transaction=True)
def test_a_finished_query_gets_new_mined_candidates_and_fresh_annotators_receive_exactly_those(tiny_collection):
    Collection.objects.filter(pk=tiny_collection.pk).update(overlap_k=2)
    collection = Collection.objects.get(pk=tiny_collection.pk)
    mine(collection, negatives=2)
    first_round = people(collection, "first", 2)
    assert not run_together(*[(drain, (collection.pk, u.pk), {}) for u in first_round])
    old = set(Candidate.objects.filter(collection=collection).values_list("pk", flat=True))
    assert Lease.objects.filter(collection=collection, status=Lease.Status.DONE).count() == 2 * 12  # all finished
    fresh = people(collection, "fresh", 3)
    assert assignment.next_task(collection=collection, annotator=fresh[0]) is None  # nothing left: the loop waits

    job = mine(collection, negatives=5)  # the next round: judged pairs are never offered again
    new = set(Candidate.objects.filter(collection=collection).values_list("pk", flat=True)) - old
    assert job.candidates_added == len(new) > 0
    assert len({c.query_id for c in Candidate.objects.filter(pk__in=new)}) > 1

    received: dict = {}
    assert not run_together(*[(drain, (collection.pk, u.pk), {"received": received}) for u in fresh])
    handed_out = [cid for items in received.values() for cid in items]
    assert set(handed_out) == new  # exactly the new candidates, none of the old ones
    assert len(handed_out) == 2 * len(new)  # each to k people
    report = assignment.coverage_report(collection)
    assert max(report["judges_histogram"]) <= collection.overlap_k
    assert report["over_judged"] == report["duplicates"] == report["coverage_violations"] == 0
