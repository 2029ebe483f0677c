"""Mining jobs: start one, mine its chunks, finish, cancel, recover chunks of dead workers.

A job's queries are cut into chunks (MiningChunk rows, created with the job). A chunk is mined
outside any transaction (retrieval is the slow part), then written in one transaction that
locks the chunk and its query rows, checks the chunk is not done yet, adds the new Candidates,
merges sources into the existing ones, marks the chunk done and adds to the job's counters. So a
rerun, a redelivered message or two workers on the same chunk add nothing twice and count
nothing twice; the (query, document) unique constraint backs this up against other writers.

Query rows are locked with Query.objects.lock (primary-key order, as assignment locks them), so
mining and handing out work never deadlock on each other; Candidate.objects.add_proposed writes the
candidates (assignment owns their coverage).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from annotate.models import Candidate, Collection, Document, Judgment, Query
from config import liveness

from . import pipeline
from .models import MiningChunk, MiningJob
from .pipeline import (
    MiningParamsError,
    MiningSettings,
    QueryInput,
    Resources,
    resolve_settings,
)

logger = logging.getLogger(__name__)

MAX_CHUNK_ATTEMPTS = 5


# ---- starting ---------------------------------------------------------------------------------

@transaction.atomic
def start_mining(
    *,
    collection: Collection,
    method: str,
    depth: int | None = None,
    negatives: int | None = None,
    params: dict | None = None,
    created_by=None,
    query_ids: Sequence[int] | None = None,
    enqueue: bool = True,
) -> MiningJob:
    """Create a job (and its chunks) mining `query_ids` (default: every query of the collection).

    Raises MiningParamsError naming the bad parameter. With `enqueue` the job is sent to the
    `mining` queue once the transaction commits; without, the caller runs it (`run_job_inline`).
    """
    if params is not None and not isinstance(params, dict):
        raise MiningParamsError(_("params must be an object, got %(type)s") % {"type": type(params).__name__})
    settings = resolve_settings(method=method, depth=depth, negatives=negatives, params=params,
                                defaults=collection.mining_settings or {})
    queries = Query.objects.filter(collection=collection)
    if query_ids is not None:
        queries = queries.filter(pk__in=list(query_ids))
    ordered = list(queries.order_by("pk").values_list("pk", flat=True))
    if not ordered:
        raise MiningParamsError(_("collection %(slug)s has no queries to mine") % {"slug": collection.slug})
    if not Document.objects.filter(collection=collection).exists():
        raise MiningParamsError(_("collection %(slug)s has no documents to mine") % {"slug": collection.slug})
    job = MiningJob.objects.create(
        collection=collection, created_by=created_by, method=method, params=settings.as_params(),
        queries_total=len(ordered),
    )
    size = settings.chunk_size
    MiningChunk.objects.bulk_create([
        MiningChunk(job=job, index=i, query_ids=ordered[start : start + size])
        for i, start in enumerate(range(0, len(ordered), size))
    ])
    if enqueue:
        from . import tasks

        transaction.on_commit(lambda: tasks.start_job.delay(job.pk))
    return job


def job_settings(job: MiningJob) -> MiningSettings:
    params = dict(job.params)
    return resolve_settings(method=job.method, depth=params.pop("depth"), negatives=params.pop("negatives"),
                            params=params)


def load_resources(collection: Collection, settings: MiningSettings, *, progress=None) -> Resources:
    """The BM25 index and/or the bi-encoder + corpus embeddings the method needs (built if missing)."""
    from . import dense, index_store

    resources = Resources()
    if settings.method in ("bm25", "hybrid"):
        resources.bm25 = index_store.collection_index(collection)
    if settings.method in ("dense", "hybrid"):
        # A job's own model_dir, else the promoted model's miner (training.miner), else the base.
        from training.miner import miner_dir

        resources.encoder = dense.bi_encoder(settings.model_dir or miner_dir(collection))
        resources.embeddings = dense.corpus_embeddings(collection, resources.encoder, progress=progress)
        resources.warnings.extend(resources.embeddings.warnings)
    return resources


def prepare_job(job: MiningJob, *, progress=None) -> Resources | None:
    """Build what the job reads, record warnings, mark it running. None if it is no longer active."""
    job.refresh_from_db()
    if job.status not in MiningJob.ACTIVE or job.cancel_requested:
        return None
    resources = load_resources(job.collection, job_settings(job), progress=progress)
    MiningJob.objects.filter(pk=job.pk, status__in=MiningJob.ACTIVE).update(
        status=MiningJob.Status.RUNNING, warnings=resources.warnings,
        started_at=job.started_at or timezone.now(),
    )
    job.refresh_from_db()
    return resources


# ---- one chunk --------------------------------------------------------------------------------

def claim_chunk(chunk: MiningChunk, *, worker: str = "") -> bool:
    """Mark a chunk as being mined by `worker`; False if it is done or its job is not running."""
    job = MiningJob.objects.only("status", "cancel_requested").get(pk=chunk.job_id)
    if job.status != MiningJob.Status.RUNNING or job.cancel_requested:
        return False
    claimed = MiningChunk.objects.filter(pk=chunk.pk).exclude(status=MiningChunk.Status.DONE).update(
        status=MiningChunk.Status.RUNNING, worker=worker[:255], started_at=timezone.now(), attempts=F("attempts") + 1,
    )
    return bool(claimed)


def mine_chunk(chunk: MiningChunk, *, resources: Resources | None = None, worker: str = "") -> int | None:
    """Mine one chunk and store it; returns candidates added, None if there was nothing to do."""
    if not claim_chunk(chunk, worker=worker):
        return None
    job = MiningJob.objects.select_related("collection").get(pk=chunk.job_id)
    settings = job_settings(job)
    collection = job.collection
    if resources is None:
        resources = load_resources(collection, settings)
    inputs = query_inputs(collection, chunk.query_ids, positive_grade=settings.positive_grade)
    texts = _DocumentTexts()
    from .rescoring import promoted_reranker, rescore

    rescorer = None
    if promoted_reranker(collection) is not None:
        rescorer = lambda query_text, doc_texts: rescore(collection, query_text, doc_texts)  # noqa: E731
    outcomes = pipeline.mine_queries(
        resources, settings, [inputs[pk] for pk in chunk.query_ids if pk in inputs],
        tokenizer=collection.tokenizer, texts_of=texts, rescorer=rescorer,
    )
    return store_chunk(chunk, outcomes)


class _DocumentTexts:
    """Document pk -> title + text, read from the database once per document per chunk."""

    def __init__(self):
        self.cache: dict[int, str] = {}

    def __call__(self, documents: Iterable[int]) -> dict[int, str]:
        missing = [d for d in documents if d not in self.cache]
        for pk, title, text in Document.objects.filter(pk__in=missing).values_list("pk", "title", "text"):
            self.cache[pk] = f"{title}\n{text}" if title else text
        return self.cache


def query_inputs(collection: Collection, query_pks: Sequence[int], *, positive_grade: int = 2) -> dict[int, QueryInput]:
    """What mining needs to know of each query: text, known positives, judged pairs, imported runs."""
    inputs = {
        pk: QueryInput(key=external_id, text=text)
        for pk, external_id, text in Query.objects.filter(pk__in=list(query_pks), collection=collection)
        .values_list("pk", "external_id", "text")
    }
    candidates = list(
        Candidate.objects.filter(query_id__in=list(inputs)).values_list("pk", "query_id", "document_id", "sources",
                                                                       "is_gold", "gold_grade")
    )
    by_pk = {pk: (query, document) for pk, query, document, *_ in candidates}
    for pk, query, document, sources, is_gold, gold_grade in candidates:
        entry = inputs[query]
        if is_gold:
            entry.never.add(document)
            if gold_grade is not None and gold_grade >= positive_grade:
                entry.positives.add(document)
        for source, detail in (sources or {}).items():
            if source.startswith("run:") and isinstance(detail, dict) and isinstance(detail.get("rank"), int):
                entry.runs.setdefault(source, []).append((detail["rank"], document))
    judged = Judgment.objects.standing().filter(candidate_id__in=list(by_pk)).values_list("candidate_id", "grade")
    for candidate_id, grade in judged:
        query, document = by_pk[candidate_id]
        inputs[query].never.add(document)  # a judged pair is never offered again
        if grade is not None and grade >= positive_grade:
            inputs[query].positives.add(document)
    for entry in inputs.values():
        entry.runs = {source: [d for _, d in sorted(ranked)] for source, ranked in entry.runs.items()}
    return inputs


def store_chunk(chunk: MiningChunk, outcomes: Sequence[pipeline.QueryMining]) -> int | None:
    """Write a mined chunk in one transaction; None (and nothing written) if it was done already."""
    with transaction.atomic():
        chunk = MiningChunk.objects.select_for_update().get(pk=chunk.pk)
        if chunk.status == MiningChunk.Status.DONE:
            return None
        job = MiningJob.objects.only("collection_id", "status", "cancel_requested").get(pk=chunk.job_id)
        if job.status != MiningJob.Status.RUNNING or job.cancel_requested:
            return None
        query_pks = Query.objects.lock(chunk.query_ids)
        key_to_pk = dict(Query.objects.filter(pk__in=query_pks).values_list("external_id", "pk"))
        sources, new, guards = {}, [], {}
        for outcome in outcomes:
            query_pk = key_to_pk[outcome.key]
            for document, proposed in outcome.sources.items():
                sources[(query_pk, document)] = proposed
            new.extend((query_pk, negative.document) for negative in outcome.negatives)
            for likely_positive in outcome.lane:  # judged like any negative, tagged for staff
                new.append((query_pk, likely_positive.document))
                guards[(query_pk, likely_positive.document)] = likely_positive.guard
        added = Candidate.objects.add_proposed(collection_id=job.collection_id, query_pks=query_pks,
                                               sources=sources, new=new, guards=guards)
        chunk.status = MiningChunk.Status.DONE
        chunk.candidates_added = added
        chunk.finished_at = timezone.now()
        chunk.save(update_fields=["status", "candidates_added", "finished_at"])
        MiningJob.objects.filter(pk=chunk.job_id).update(
            queries_done=F("queries_done") + len(chunk.query_ids), candidates_added=F("candidates_added") + added,
        )
    return added


# ---- finishing, failing, cancelling --------------------------------------------------------------

def finish_if_complete(job: MiningJob) -> bool:
    """Mark the job done once every chunk is; True if it is done (now or before)."""
    if MiningChunk.objects.filter(job_id=job.pk).exclude(status=MiningChunk.Status.DONE).exists():
        return False
    MiningJob.objects.filter(pk=job.pk, status__in=MiningJob.ACTIVE).update(status=MiningJob.Status.DONE,
                                                                  finished_at=timezone.now())
    return MiningJob.objects.filter(pk=job.pk, status=MiningJob.Status.DONE).exists()


def fail_job(job: MiningJob, *, error: str) -> None:
    logger.error("mining job %s failed: %s", job.pk, error)
    MiningJob.objects.filter(pk=job.pk, status__in=MiningJob.ACTIVE).update(
        status=MiningJob.Status.FAILED, error=error[:5000], finished_at=timezone.now(),
    )


def cancel_mining(*, job: MiningJob) -> MiningJob:
    """Stop a job: chunks not yet stored are skipped (checked per chunk); stored ones stay."""
    MiningJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    MiningJob.objects.filter(pk=job.pk, status__in=MiningJob.ACTIVE).update(status=MiningJob.Status.CANCELLED,
                                                                  finished_at=timezone.now())
    job.refresh_from_db()
    return job


# ---- recovering chunks of dead workers ---------------------------------------------------------

def stalled_chunks(job: MiningJob, *, grace: float) -> list[MiningChunk]:
    """Running chunks whose worker stopped beating (killed, machine lost) for longer than `grace` s."""
    started_before = timezone.now() - timedelta(seconds=grace)
    running = MiningChunk.objects.filter(job=job, status=MiningChunk.Status.RUNNING, started_at__lt=started_before)
    return [chunk for chunk in running if not liveness.is_alive(MiningChunk.LIVENESS, chunk.pk)]


def orphaned_chunks(job: MiningJob, *, grace: float) -> list[MiningChunk]:
    """Queued chunks that nobody is getting to: nothing running and no activity for `grace` s.

    A worker that dies holding a reserved (not yet started) message leaves its chunk queued
    with no message in the broker until its visibility timeout (an hour). When the job has
    gone quiet, all its queued chunks are worth sending again: a duplicate message is harmless.
    """
    chunks = MiningChunk.objects.filter(job=job)
    if chunks.filter(status=MiningChunk.Status.RUNNING).exists():
        return []
    latest = chunks.aggregate(started=Max("started_at"), finished=Max("finished_at"))
    last = max((m for m in (job.started_at, latest["started"], latest["finished"]) if m is not None), default=None)
    if last is not None and timezone.now() - last < timedelta(seconds=grace):
        return []
    return list(chunks.filter(status=MiningChunk.Status.QUEUED))


def requeue_chunk(chunk: MiningChunk) -> bool:
    """Give a stalled chunk back to the queue; False if someone else did, or it moved on meanwhile."""
    if chunk.attempts >= MAX_CHUNK_ATTEMPTS:
        fail_job(chunk.job, error=_("chunk %(index)s was started %(attempts)s times without finishing") % {
            "index": chunk.index, "attempts": chunk.attempts})
        return False
    return bool(MiningChunk.objects.filter(
        pk=chunk.pk, status=MiningChunk.Status.RUNNING, attempts=chunk.attempts, started_at=chunk.started_at,
    ).update(status=MiningChunk.Status.QUEUED, worker=""))


# ---- running a whole job in this process (manage.py mine --sync) --------------------------------

def run_job_inline(job: MiningJob, *, progress: Callable[[int], None] | None = None) -> MiningJob:
    """Mine every chunk of the job here, one after the other; `progress(n)` after each chunk."""
    resources = prepare_job(job)
    if resources is None:
        return job
    started = time.monotonic()
    for chunk in MiningChunk.objects.filter(job=job).exclude(status=MiningChunk.Status.DONE).order_by("index"):
        job.refresh_from_db(fields=["cancel_requested", "status"])
        if job.cancel_requested or job.status != MiningJob.Status.RUNNING:
            break
        try:
            mine_chunk(chunk, resources=resources, worker="inline")
        except Exception as exc:
            fail_job(job, error=_("chunk %(index)s: %(error)s") % {"index": chunk.index,
                                                                   "error": f"{type(exc).__name__}: {exc}"})
            raise
        if progress is not None:
            progress(len(chunk.query_ids))
    finish_if_complete(job)
    job.refresh_from_db()
    logger.info("mining job %s: %s in %.1f s", job.pk, job.status, time.monotonic() - started)
    return job
