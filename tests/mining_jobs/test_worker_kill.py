"""Acceptance: a real worker is killed with SIGKILL mid-job; a new worker finishes it with no duplicates."""
import json
import random

import pytest
from django.db.models import Count, Sum

from annotate.importing import import_files
from annotate.models import Candidate
from mining import services
from mining.models import MiningChunk, MiningJob

from ..conftest import WorkerProcess, wait_for
from .conftest import write_beir

N_QUERIES = 200


def kuake_subset(datasets, directory, *, n_queries=N_QUERIES, extra_docs=1500, seed=0):
    """The first queries of kuake-qtr with their judged titles plus random other titles."""
    source = datasets / "kuake-qtr-train"
    queries = {}
    with open(source / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
            if len(queries) == n_queries:
                break
    qrels = []
    with open(source / "qrels.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            query_id, doc_id, grade = line.rstrip("\n").split("\t")
            if query_id in queries:
                qrels.append((query_id, doc_id, int(grade)))
    corpus = {}
    with open(source / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            corpus[row["_id"]] = row["text"]
    keep = {doc for _, doc, _ in qrels} | set(random.Random(seed).sample(sorted(corpus), extra_docs))
    return write_beir(directory, corpus={d: corpus[d] for d in sorted(keep)}, queries=queries, qrels=qrels)


@pytest.mark.faults
@pytest.mark.celery
@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_the_job_completes_without_duplicates(
    celery_worker_process, redis_url, settings, tmp_path, datasets,
):
    files = kuake_subset(datasets, tmp_path / "kuake")
    import_files(collection_slug="kuake-small", corpus=files / "corpus.jsonl", queries=files / "queries.jsonl",
                 qrels=files / "qrels.tsv")
    from annotate.models import Collection

    collection = Collection.objects.get(slug="kuake-small")
    job = services.start_mining(collection=collection, method="bm25", negatives=5, params={"chunk_size": 5})
    chunks = MiningChunk.objects.filter(job=job).count()
    assert chunks == N_QUERIES // 5

    # Let the first worker get going, then kill it in the middle of a chunk while chunks remain.
    def mid_chunk():
        if MiningJob.objects.get(pk=job.pk).queries_done >= 20:
            return MiningChunk.objects.filter(job=job, status="running").first()
    wait_for(mid_chunk, timeout=120, interval=0.05, message="a chunk in progress after the first chunks")
    celery_worker_process.kill()
    job.refresh_from_db()
    assert job.status == "running" and job.queries_done < job.queries_total, "the job finished before the kill"
    killed = MiningChunk.objects.filter(job=job, status="running").first()  # None if the kill fell between chunks

    replacement = WorkerProcess(redis_url=redis_url, data_dir=settings.DATA_DIR, log=tmp_path / "worker2.log").start()
    try:
        done = wait_for(lambda: MiningJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).first(),
                        timeout=180, message="the job to complete on the new worker")
    finally:
        replacement.stop()
    assert done.status == "done", done.error or replacement.output()[-3000:]
    assert done.queries_done == done.queries_total == N_QUERIES
    mined = Candidate.objects.filter(collection=collection).exclude(sources__has_key="qrels")
    assert done.candidates_added == mined.count() > 0
    assert MiningChunk.objects.filter(job=job).aggregate(total=Sum("candidates_added"))["total"] == done.candidates_added
    assert not Candidate.objects.values("query", "document").annotate(n=Count("pk")).filter(n__gt=1).exists()
    if killed is not None:  # the chunk that died with the first worker was mined again by the second
        killed.refresh_from_db()
        assert killed.status == "done" and killed.attempts >= 2

    # And mining again adds nothing.
    again = services.run_job_inline(services.start_mining(collection=collection, method="bm25", negatives=5,
                                                          enqueue=False))
    assert again.status == "done" and again.candidates_added == 0
