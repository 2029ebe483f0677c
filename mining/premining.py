"""Pre-mining: keep enough queries with open candidates ready that no annotator waits for mining.

Per active collection: annotators with a lease taken in the last day are active; a query is
ready when it has a candidate still short of the collection's overlap k and of its offer bound
(Query.objects.open_for_judging — the same test assignment uses, so a finished query that got
new candidates counts as ready, and is handed out). When
fewer than N x active annotators queries are ready (N = mining_settings "ready_per_annotator",
default 5), queries without any candidate are mined — as many as are missing, in the stable
random order assignment uses — unless a job of the collection is already pending or running.
Method and parameters come from mining_settings ("premine_method", default bm25, plus the usual
mining keys).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotate.models import Candidate, Collection, Lease, Query

from .models import MiningJob
from .services import MiningParamsError, start_mining

logger = logging.getLogger(__name__)

DEFAULT_READY_PER_ANNOTATOR = 5
DEFAULT_METHOD = "bm25"
ACTIVE_WINDOW = timedelta(days=1)


def active_annotators(collection: Collection, *, now=None) -> int:
    since = (now or timezone.now()) - ACTIVE_WINDOW
    return Lease.objects.filter(collection=collection, acquired_at__gte=since).values("annotator").distinct().count()


def ready_queries(collection: Collection) -> int:
    return Query.objects.filter(collection=collection).open_for_judging(collection.overlap_k).count()


def queries_to_mine(collection: Collection, *, now=None) -> list[int]:
    """The queries to mine now (empty when enough are ready)."""
    per_annotator = (collection.mining_settings or {}).get("ready_per_annotator", DEFAULT_READY_PER_ANNOTATOR)
    wanted = int(per_annotator) * active_annotators(collection, now=now)
    missing = wanted - ready_queries(collection)
    if missing <= 0:
        return []
    fresh = Query.objects.filter(collection=collection).exclude(Exists(Candidate.objects.filter(query=OuterRef("pk"))))
    return list(fresh.order_by(F("holders").asc(), "shuffle_key").values_list("pk", flat=True)[:missing])


def premine_collection(collection: Collection, *, now=None) -> MiningJob | None:
    if MiningJob.objects.filter(collection=collection, status__in=MiningJob.ACTIVE).exists():
        return None  # one at a time: the running job may be producing exactly these
    query_ids = queries_to_mine(collection, now=now)
    if not query_ids:
        return None
    settings = dict(collection.mining_settings or {})
    method = settings.get("premine_method", DEFAULT_METHOD)
    try:
        job = start_mining(collection=collection, method=method, params=None, created_by=None, query_ids=query_ids)
    except MiningParamsError as exc:
        logger.error("pre-mining %s: %s", collection.slug, exc)
        return None
    logger.info("pre-mining %s: job %s for %d queries", collection.slug, job.pk, len(query_ids))
    return job


def premine_collections(*, now=None) -> list[MiningJob]:
    jobs = []
    for collection in Collection.objects.filter(is_active=True):
        job = premine_collection(collection, now=now)
        if job is not None:
            jobs.append(job)
    return jobs
