"""manage.py mine --sync on a small collection: candidates with sources, idempotent reruns, guards, bad arguments."""
import json

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Candidate, Judgment
from mining.models import MiningChunk, MiningJob


def mine(*args):
    from io import StringIO

    out = StringIO()
    call_command("mine", *args, "--sync", "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def mined(collection):
    return Candidate.objects.filter(collection=collection).exclude(sources__has_key="qrels")


@pytest.mark.django_db
def test_bm25_mining_adds_negatives_with_rank_and_score(tiny_collection):
    result = mine("tiny", "--method", "bm25", "--depth", "20", "--negatives", "3")
    assert result["status"] == "done" and result["queries_done"] == result["queries_total"] == 12
    new = list(mined(tiny_collection))
    assert result["candidates_added"] == len(new) > 0
    per_query, lane_per_query = {}, {}
    for candidate in new:
        counts = lane_per_query if candidate.guard else per_query
        counts[candidate.query_id] = counts.get(candidate.query_id, 0) + 1
        bm25 = candidate.sources["bm25"]
        assert 1 <= bm25["rank"] <= 20 and bm25["score"] > 0
        assert candidate.coverage == 0
    assert max(per_query.values()) <= 3
    assert max(lane_per_query.values(), default=0) <= 2  # the default false-negative lane


@pytest.mark.django_db
def test_running_again_adds_nothing(tiny_collection):
    first = mine("tiny", "--method", "bm25", "--negatives", "4")
    before = Candidate.objects.count()
    second = mine("tiny", "--method", "bm25", "--negatives", "4")
    assert first["candidates_added"] > 0
    assert second["candidates_added"] == 0 and Candidate.objects.count() == before
    assert MiningChunk.objects.filter(job_id=second["job"], status="done").count() == MiningChunk.objects.filter(job_id=second["job"]).count()


@pytest.mark.django_db
def test_judged_pairs_are_not_offered_again_but_their_sources_are_updated(tiny_collection):
    mine("tiny", "--method", "bm25", "--negatives", "3", "--params", '{"margin": null, "dedup": null}')
    offered = mined(tiny_collection).first()
    Judgment.objects.create(collection=tiny_collection, candidate=offered, source="test:judge", grade=0)
    offered.sources = {**offered.sources, "run:x": {"rank": 1, "score": 1.0}, "bm25": {"rank": 99, "score": 0}}
    offered.save()
    mine("tiny", "--method", "hybrid", "--negatives", "3", "--params", '{"margin": null, "dedup": null, "model_dir": null}')
    offered.refresh_from_db()
    assert offered.sources["run:x"] == {"rank": 1, "score": 1.0}  # never dropped
    assert offered.sources["bm25"]["rank"] < 99  # refreshed by the new pass
    assert "hybrid" in offered.sources and "dense" in offered.sources
    assert Candidate.objects.filter(query=offered.query, document=offered.document).count() == 1


@pytest.mark.django_db
def test_positives_are_never_offered_and_margins_keep_negatives_below_them(tiny_collection):
    mine("tiny", "--method", "bm25", "--negatives", "10", "--params", '{"margin": 0.3, "dedup": null, "lane": 3}')
    from mining import index_store
    from mining.text.tokenize import tokenize

    index = index_store.collection_index(tiny_collection)
    lane = 0
    for judgment in Judgment.objects.filter(collection=tiny_collection, grade__gte=2).select_related("candidate__query"):
        query = judgment.candidate.query
        scores = index.bm25.scores(tokenize(query.text))
        positive = scores[list(index.doc_ids).index(judgment.candidate.document_id)]
        bar = positive - abs(positive) * 0.3 + 1e-9
        for candidate in mined(tiny_collection).filter(query=query):
            if candidate.guard:  # the false-negative lane: what the margin dropped, kept and tagged
                assert candidate.guard == "margin" and candidate.sources["bm25"]["score"] > bar
                lane += 1
            else:
                assert candidate.sources["bm25"]["score"] <= bar
    assert lane > 0


@pytest.mark.django_db
def test_dense_mining_with_a_tiny_encoder(tiny_collection, tiny_encoder_dir):
    result = mine("tiny", "--method", "dense", "--negatives", "2", "--params",
                  json.dumps({"model_dir": str(tiny_encoder_dir)}))
    assert result["candidates_added"] > 0 and result["warnings"] == []
    assert all("dense" in c.sources for c in mined(tiny_collection))


@pytest.mark.django_db
@pytest.mark.parametrize("args, message", [
    (["nope", "--method", "bm25"], "collection 'nope' does not exist"),
    (["tiny", "--method", "bm25", "--depth", "0"], "depth must be between"),
    (["tiny", "--method", "bm25", "--negatives", "-1"], "negatives must be >= 0"),
    (["tiny", "--method", "bm25", "--params", "{"], "--params: not valid JSON"),
    (["tiny", "--method", "bm25", "--params", '{"colour": 1}'], "unknown mining parameter"),
    (["tiny", "--method", "bm25", "--params", '{"strategy": "best"}'], "strategy must be one of"),
])
def test_bad_arguments_name_the_problem(tiny_collection, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("mine", *args, "--sync")
    assert not MiningJob.objects.exists()


@pytest.mark.django_db
def test_enqueue_prints_the_job_and_where_to_watch_it(tiny_collection, django_capture_on_commit_callbacks):
    from io import StringIO

    out = StringIO()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("mine", "tiny", "--method", "bm25", stdout=out)
    job = MiningJob.objects.get()
    assert f"mining job {job.pk} enqueued" in out.getvalue() and f"/mining/jobs/{job.pk}/" in out.getvalue()
    assert len(callbacks) == 1 and job.status == "pending"
