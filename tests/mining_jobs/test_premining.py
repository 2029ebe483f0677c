"""Pre-mining keeps N unjudged queries ready per active annotator, mining queries without candidates."""
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Candidate, Lease, Query
from mining import premining
from mining.models import MiningJob


def lease(collection, user, query, *, ago=timedelta(0)):
    row = Lease.objects.create(collection=collection, query=query, annotator=user)
    Lease.objects.filter(pk=row.pk).update(acquired_at=timezone.now() - ago)


@pytest.fixture
def no_open_candidates(tiny_collection):
    # Every imported (qrels) candidate already has its k judges: nothing is ready.
    Candidate.objects.filter(collection=tiny_collection).update(coverage=tiny_collection.overlap_k)
    return tiny_collection


@pytest.mark.django_db
def test_nothing_is_mined_without_active_annotators(no_open_candidates, annotator):
    lease(no_open_candidates, annotator, Query.objects.first(), ago=timedelta(days=2))  # inactive
    assert premining.premine_collections() == []


@pytest.mark.django_db
def test_missing_ready_queries_are_mined_from_queries_without_candidates(no_open_candidates, annotator, django_user_model,
                                                                         django_capture_on_commit_callbacks):
    collection = no_open_candidates
    collection.mining_settings = {"ready_per_annotator": 2}
    collection.save()
    second = django_user_model.objects.create_user("ann2", password="x")
    queries = list(Query.objects.filter(collection=collection).order_by("pk"))
    lease(collection, annotator, queries[0])
    lease(collection, second, queries[1])
    fresh = queries[-5:]
    Candidate.objects.filter(query__in=fresh).delete()
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        (job,) = premining.premine_collections()
    assert len(enqueued) == 1 and job.method == "bm25" and job.created_by is None
    mined = set(job.chunks.values_list("query_ids", flat=True)[0])
    assert len(mined) == 4 and mined <= {q.pk for q in fresh}  # 2 per annotator x 2 annotators
    # While that job runs, no second one is started.
    assert premining.premine_collections() == []
    MiningJob.objects.update(status="done")
    document = collection.documents.first()
    for query in fresh[:4]:  # as if mined: four queries with open candidates
        Candidate.objects.create(collection=collection, query=query, document=document)
    assert premining.queries_to_mine(collection) == []
