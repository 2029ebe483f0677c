"""Which queries an export reads, in which order, and in batches of about CHUNK candidates.

Order: queries by external id, candidates by document external id, both compared as code points
(PostgreSQL's "C" collation = SQLite's BINARY = Python's str order), never by the database's
locale, so the same data gives the same file on every backend.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import itemgetter

from django.db import connection
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce, Collate

from ..models import Candidate, Collection, Query
from .filters import ExportParams

CHUNK = 5000
QUERIES_PER_FETCH = 2000
MAX_QUERIES_PER_BATCH = 500


def code_point_order(field: str):
    collation = "C" if connection.vendor == "postgresql" else "BINARY"
    return Collate(F(field), collation)



def query_listing(collection: Collection, params: ExportParams):
    """Rows (pk, external id, text, split, number of candidates) of the queries, in export order."""
    queries = Query.objects.filter(collection=collection)
    if params.split != "all":
        queries = queries.filter(split=params.split)
    sizes = (Candidate.objects.filter(query=OuterRef("pk")).order_by().values("query")
             .annotate(n=Count("pk")).values("n"))
    return (queries.annotate(n_candidates=Coalesce(Subquery(sizes), 0))
            .order_by(code_point_order("external_id"))
            .values_list("pk", "external_id", "text", "split", "n_candidates"))


def query_batches(collection: Collection, params: ExportParams) -> Iterator[list[tuple]]:
    return batched(query_listing(collection, params).iterator(chunk_size=QUERIES_PER_FETCH))


def batched(rows: Iterable[tuple]) -> Iterator[list[tuple]]:
    """Query rows in batches of about CHUNK candidates (a query larger than CHUNK is a batch by
    itself)."""
    batch: list[tuple] = []
    size = 0
    for row in rows:
        batch.append(row)
        size += row[4]
        if size >= CHUNK or len(batch) >= MAX_QUERIES_PER_BATCH:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch



def by_doc_id(by_query: dict[int, list[tuple]]) -> dict[int, list[tuple]]:
    """Each query's candidates in order of document id (unique in a collection)."""
    first = itemgetter(0)
    for group in by_query.values():
        group.sort(key=first)
    return by_query
