"""Keeping the judging order up to date: Candidate.priority, and per query its best open one.

A candidate's priority is what the collection's strategy (annotate/judging/strategies.py) gives the
pair from its ranked lists (`sources`), people's grades of it and the machine judge's probabilities
(`sources["machine"]["probs"]`); a query's `next_priority` is the best priority among its
candidates that still need a judge, so assignment finds the next task in one index scan.
Anything that changes a priority's inputs marks the query stale (`Query.order_stale`): mining or an
import (new pairs, new ranks), the machine judge, a change of strategy, and under `uncertain` and
`bandit` a task that ends (new grades). Assignment recomputes stale queries before handing work
out (a bounded number per request, the rest by the `refresh_priorities` task); a query never
computed has no `next_priority` and comes after those that have one.

Recomputing a query takes its row lock (skip-locked: a query another request is busy with is left
for the next one) in a transaction of its own, like every writer of its candidates; whoever changes
a candidate's coverage keeps `next_priority` in step under the same lock (assignment.py).
"""
from __future__ import annotations

import logging
from collections import defaultdict

from django.db import connection, transaction

from ..formats import source_ranks
from ..models import MACHINE_SOURCE, Candidate, Collection, Judgment, Query
from . import strategies

# Stale queries one next_task request recomputes before choosing (about 12,000 candidates/s: 20
# queries of 20-100 candidates cost a request 30-170 ms); a whole collection marked stale (import,
# strategy change, machine judge) is left to the worker.
STALE_QUERIES_PER_REQUEST = 20
log = logging.getLogger(__name__)


def uses_priorities(collection: Collection) -> bool:
    return collection.judging_strategy != strategies.FEWEST_JUDGED


def uses_grades(collection: Collection) -> bool:
    """Whether people's grades move the order (so a finished task makes its query stale)."""
    return collection.judging_strategy in (strategies.UNCERTAIN, strategies.BANDIT)


def mark_stale(*, collection: Collection | None = None, query_ids=None) -> int:
    """Mark queries' judging order stale: a whole collection's, or some queries'."""
    queries = Query.objects.filter(order_stale=False)
    if collection is not None:
        queries = queries.filter(collection=collection)
    if query_ids is not None:
        queries = queries.filter(pk__in=list(query_ids))
    return queries.update(order_stale=True)


def mark_collection_stale(collection: Collection) -> None:
    """Mark a whole collection stale and have the worker recompute it after the commit."""
    mark_stale(collection=collection)
    if uses_priorities(collection):
        collection_id = collection.pk
        transaction.on_commit(lambda: _queue_refresh(collection_id))


def _queue_refresh(collection_id: int) -> None:
    from ..tasks import refresh_priorities

    try:
        refresh_priorities.delay(collection_id)
    except Exception as error:  # the broker is down: next_task still recomputes stale queries itself
        log.warning("could not queue the judging order of collection %s: %s", collection_id, error)


def stale_query_ids(collection: Collection, limit: int | None = None) -> list[int]:
    ids = Query.objects.filter(collection=collection, order_stale=True).order_by("pk").values_list("pk", flat=True)
    return list(ids[:limit] if limit else ids)


def refresh_stale(collection: Collection, *, limit: int | None = STALE_QUERIES_PER_REQUEST) -> int:
    """Recompute the stale queries of a collection (at most `limit`); returns how many were done.
    With nothing stale (the usual request) it costs one index read and no transaction."""
    if not uses_priorities(collection):
        return 0
    wanted = stale_query_ids(collection, limit)
    if not wanted:
        return 0
    with transaction.atomic():
        locked = list(Query.objects.select_for_update(skip_locked=True).filter(pk__in=wanted, order_stale=True)
                      .order_by("pk").values_list("pk", flat=True))
        compute(collection, locked)
    return len(locked)


def refresh_all(collection: Collection, *, batch: int = 200) -> int:
    """Recompute every stale query of a collection, `batch` queries a transaction (the task)."""
    done = 0
    while True:
        count = refresh_stale(collection, limit=batch)
        done += count
        if count == 0:
            return done


def compute(collection: Collection, query_ids: list[int]) -> None:
    """Write the strategy's priorities of these (locked) queries' candidates."""
    if not query_ids:
        return
    grades: dict[int, list[int]] = defaultdict(list)
    for candidate_id, grade in (Judgment.objects.people_grades()
                                .filter(collection=collection, candidate__query_id__in=query_ids)
                                .values_list("candidate_id", "grade")):
        grades[candidate_id].append(grade)
    by_query: dict[int, list[strategies.Pair]] = defaultdict(list)
    for pk, query_id, sources in (Candidate.objects.filter(query_id__in=query_ids, is_gold=False)
                                  .values_list("pk", "query_id", "sources")):
        by_query[query_id].append(pair_of(pk, sources, grades.get(pk, ())))
    computed: dict[int, float] = {}
    for pairs in by_query.values():
        computed.update(strategies.priorities(collection.judging_strategy, pairs))
    _write_priorities(computed)
    Query.objects.filter(pk__in=query_ids).set_next_priority(collection.overlap_k, order_stale=False)


def _write_priorities(computed: dict[int, float]) -> None:
    """One UPDATE from two arrays on PostgreSQL (Django's bulk_update writes a CASE of a thousand
    branches per statement: on bench/annotate_load.py's 1M-candidate collection the whole order took
    85 s this way against about 350 s); bulk_update elsewhere."""
    if not computed:
        return
    if connection.vendor == "postgresql":
        table = Candidate._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} AS c SET priority = u.p FROM unnest(%s::bigint[], %s::float8[]) AS u(id, p) "
                           f"WHERE c.id = u.id", [list(computed), list(computed.values())])
        return
    Candidate.objects.bulk_update([Candidate(pk=pk, priority=p) for pk, p in computed.items()], ["priority"],
                                  batch_size=1000)


def pair_of(pk: int, sources, grades) -> strategies.Pair:
    """A candidate as the strategies see it: its ranks in every ranked list that proposed it and the
    machine judge's probabilities (a malformed entry is ignored, never trusted)."""
    sources = sources if isinstance(sources, dict) else {}
    ranks = source_ranks(sources)
    machine = sources.get(MACHINE_SOURCE)
    probs = machine.get("probs") if isinstance(machine, dict) else None
    if not (isinstance(probs, list) and len(probs) == 4 and all(isinstance(p, int | float) for p in probs)):
        probs = None
    return strategies.Pair(key=pk, ranks=ranks, grades=tuple(grades), machine=probs)
