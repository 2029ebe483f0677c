"""The export's reading side: a collection's labelled pairs as a stream of query groups (`query_groups`).

Memory stays flat however large the collection: a server-side cursor (`.iterator()`, a named
cursor on PostgreSQL) walks the queries in order of external id, and the queries are taken in
batches of about CHUNK candidates; each batch is read by explicit ids (index scans, `= ANY(array)`
on PostgreSQL) and dropped once it is written. Only one batch is handled at a time (plus, on
PostgreSQL, the next one being read), so memory does not grow with the collection and no table is
scanned once per batch.

How a batch is read depends on the backend:

- PostgreSQL (postgres.py, PostgresBatches): four statements per batch, each by one array of
  explicit ids: the candidates of the batch's queries (with their source names, `jsonb_path_query_array(sources,
  '$.keyvalue().key')`, and gold grade), their documents, their judgments folded into one text key
  per candidate (`string_agg('annotator:grade', ',')`: one row per pair on the wire instead of one
  per judgment) and, if the collection has any, their adjudications. While the main thread turns a
  batch into records and writes it, the next batch's statements run on the same connection from a
  helper thread, so the database and this process work at the same time; the two threads never use
  the connection at once.
- Other backends (SQLite; labelling.py, ReadContext.candidate_rows): the same reads with `IN`
  lists, judgments folded in Python.

Both give each pair a (judgment key, final grade); its aggregate is computed once per canonical
form of the key and reused (a collection has few distinct combinations of who gave which grade),
so both backends give the same records.

Order: queries by external id, candidates by document external id, both compared as code points
(PostgreSQL's "C" collation = SQLite's BINARY = Python's str order), never by the database's
locale, so the same data gives the same file on every backend. A pair's judgments are aggregated
in a canonical order (people by pk, then imported grades), which fixes the floating-point sums,
hence the file, whatever order the database returns them in.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from django.db import connection

from ..models import AgreementReport, Collection
from .batches import query_batches, query_listing
from .filters import ExportParams
from .labelling import ReadContext
from .postgres import PostgresBatches, read_ahead
from .records import QueryGroup, ReadCounts


def query_groups(collection: Collection, params: ExportParams, counts: ReadCounts,
                 progress: Callable[[int], None] | None = None) -> Iterator[QueryGroup]:
    """The labelled query groups of the collection under `params`, in export order."""
    context = ReadContext(collection, params, AgreementReport.objects.latest_for(collection))
    if connection.vendor == "postgresql":
        for batch, fetched in read_ahead(PostgresBatches(context, query_listing(collection, params))):
            yield from context.groups(context.kept(batch, counts), PostgresBatches.rows(*fetched), counts, progress)
    else:
        for batch in query_batches(collection, params):
            batch = context.kept(batch, counts)
            yield from context.groups(batch, context.candidate_rows(batch), counts, progress)

