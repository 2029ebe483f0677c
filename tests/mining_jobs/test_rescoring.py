"""Dynamic hard negatives: once a reranker is promoted for the collection, it rescores the mined pool."""
import pytest

from annotate.models import Candidate
from mining import services
from training.models import ModelVersion


@pytest.mark.django_db
def test_a_promoted_reranker_rescores_and_orders_the_pool(tiny_collection, tiny_encoder_dir):
    ModelVersion.objects.create(collection=tiny_collection, path=str(tiny_encoder_dir), is_promoted=True)
    job = services.run_job_inline(services.start_mining(
        collection=tiny_collection, method="bm25", negatives=3, params={"margin": None, "dedup": None}, enqueue=False))
    assert job.status == "done" and job.candidates_added > 0
    mined = Candidate.objects.filter(collection=tiny_collection).exclude(sources__has_key="qrels")
    for candidate in mined:
        assert set(candidate.sources) == {"bm25", "rerank"}
    # The negatives of a query are the reranker's best non-positives: ranks 1..n of its order
    # except where a known positive sits.
    for query_id in mined.values_list("query_id", flat=True).distinct():
        ranks = sorted(c.sources["rerank"]["rank"] for c in mined.filter(query_id=query_id))
        assert ranks[-1] <= len(ranks) + 1


@pytest.mark.django_db
def test_without_a_promoted_reranker_nothing_is_rescored(tiny_collection, caplog):
    from mining.rescoring import rescore

    caplog.set_level("INFO", logger="mining.rescoring")
    assert rescore(tiny_collection, "cat", ["the cat"]) is None
    assert "no rescoring" in caplog.text
