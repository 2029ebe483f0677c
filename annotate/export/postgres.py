"""The export's batch reads on PostgreSQL: four statements per batch, each by one array of ids,
run ahead in a helper thread while the main thread writes the previous batch (see reading.py)."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from django.contrib.postgres.aggregates import StringAgg
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    F,
    Func,
    IntegerField,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Concat, Replace

from ..models import Adjudication, Candidate, Document
from ..quality.annotator_model import SOURCE_MARK
from .batches import QUERIES_PER_FETCH, batched, by_doc_id
from .records import ReadCounts

if TYPE_CHECKING:
    from .labelling import ReadContext


def read_ahead(reads: PostgresBatches) -> Iterator[tuple[list, tuple]]:
    """reads.next() until it gives None, each call already running in a helper thread while the
    caller handles the previous result; every use of the connection happens in that thread, one
    call at a time, while the main thread only turns rows into records and writes them."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-read") as pool:
        try:
            pending = pool.submit(reads.next)
            while (item := pending.result()) is not None:
                pending = pool.submit(reads.next)
                yield item
        finally:
            # Also when leaving early (an interrupted download, an error): the read in flight ends
            # first (the pool runs one call at a time), so the transaction never ends under a
            # running statement, and the query cursor is closed.
            pool.submit(reads.close).result()


class _SourceNames(Func):
    """The top-level keys of a JSON object as JSON array text: the sources' names, without the
    per-source details that make every candidate's `sources` distinct."""
    template = "jsonb_path_query_array(%(expressions)s, '$.keyvalue().key')::text"
    output_field = TextField()


# A candidate's best rank among its sources (labelling.best_rank in SQL): integer ranks >= 1 only.
_BEST_RANK = RawSQL(
    f"""CASE WHEN jsonb_typeof({Candidate._meta.db_table}.sources) = 'object' THEN
        (SELECT min((e.value->>'rank')::bigint) FROM jsonb_each({Candidate._meta.db_table}.sources) e
         WHERE jsonb_typeof(e.value->'rank') = 'number' AND (e.value->>'rank') ~ '^[0-9]+$'
         AND (e.value->>'rank')::bigint >= 1) END""", (), output_field=IntegerField())


class _Ids:
    """Stands for a batch's id array in a statement compiled once (see PostgresBatches)."""


_IDS = _Ids()


class PostgresBatches:
    """PostgreSQL reads of a batch: four statements, each looking rows up by one array of explicit
    ids (`= ANY(%s)`: an index or bitmap scan whatever the collection's size).

    The statements are compiled by the ORM once, here in the main thread, with a placeholder for the
    ids; `fetch` runs them on the driver's connection, so it may run in the helper thread (Django's
    connection wrapper belongs to the thread that opened it). Judgments arrive folded per candidate
    (`string_agg`), one row per pair instead of one per judgment, in no particular order: the
    aggregation puts them in a canonical order itself (ReadContext._outcome)."""

    def __init__(self, context: ReadContext, listing):
        self.raw = _raw_connection()
        self.context = context
        self.listing = listing.query.sql_with_params()
        self.query_cursor = None
        self.batches = None
        names = _SourceNames("sources")
        final = Case(When(is_gold=True, then=F("gold_grade")), default=None, output_field=IntegerField())
        candidates = _any(Candidate.objects.all(), "query_id")
        if not context.params.include_gold:
            candidates = candidates.filter(is_gold=False)
        self.candidates = _compiled(candidates.annotate(names=names, final=final, rank=_BEST_RANK)
                                    .values_list("pk", "query_id", "document_id", "names", "final", "rank"))
        self.documents = _compiled(_any(Document.objects.all(), "pk").values_list("pk", "external_id", "text"))
        # quality/annotator_model.judge_key in SQL: "<annotator pk>:<grade>", "~<source>:<grade>" for an imported label.
        source = Concat(Value(SOURCE_MARK), Replace("source", Value(","), Value("%2C")), output_field=TextField())
        judge = Concat(Coalesce(Cast("annotator_id", TextField()), source, output_field=TextField()), Value(":"),
                       Cast("grade", TextField()),
                       output_field=TextField())
        self.judgments = _compiled(_any(context.counted_judgments(), "candidate_id").order_by().values("candidate_id")
                                   .annotate(key=StringAgg(judge, delimiter=",")).values_list("candidate_id", "key"))
        self.adjudications = _compiled(
            _any(Adjudication.objects.all(), "candidate_id").order_by("candidate_id", "-created_at", "-pk")
            .values_list("candidate_id", "grade")) if context.any_adjudication else None

    def next(self) -> tuple[list[tuple], tuple] | None:
        """The next batch of query rows and the rows of its kept queries (helper thread); None
        after the last."""
        if self.batches is None:
            self.batches = batched(self._query_rows())
        batch = next(self.batches, None)
        if batch is None:
            return None
        return batch, self.fetch(self.context.kept(batch, ReadCounts()))

    def _query_rows(self) -> Iterator[tuple]:
        # A named (server-side) cursor: the queries come QUERIES_PER_FETCH at a time.
        self.query_cursor = self.raw.cursor(name=f"export_queries_{uuid.uuid4().hex}")
        self.query_cursor.execute(*self.listing)
        while rows := self.query_cursor.fetchmany(QUERIES_PER_FETCH):
            yield from rows
        self.query_cursor.close()

    def close(self) -> None:
        if self.query_cursor is not None:
            # Does nothing once closed or after a failed statement; and if it fails, the cursor
            # ends with the transaction anyway: never hide the error that brought us here.
            with contextlib.suppress(Exception):
                self.query_cursor.close()

    def fetch(self, batch: list[tuple]) -> tuple[list, list, list, list]:
        """The batch's rows as the driver returns them. Runs in the helper thread, so it does
        little else than wait for the database: Python work here would hold the interpreter lock
        against the main thread, which gets it back only at the next switch interval after each
        file write."""
        candidates = self._fetch(self.candidates, [row[0] for row in batch])
        documents = self._fetch(self.documents, [c[2] for c in candidates])
        candidate_pks = [c[0] for c in candidates]
        judgments = self._fetch(self.judgments, candidate_pks)
        adjudications = self._fetch(self.adjudications, candidate_pks) if self.adjudications else []
        return candidates, documents, judgments, adjudications

    @staticmethod
    def rows(candidates: list, documents: list, judgments: list, adjudications: list) -> dict[int, list[tuple]]:
        """The batch's candidates by query (main thread): see ReadContext.groups."""
        documents = {row[0]: row for row in documents}
        judges = dict(judgments)
        adjudicated: dict[int, int] = {}
        for candidate_pk, grade in adjudications:
            adjudicated.setdefault(candidate_pk, grade)  # the latest comes first
        by_query: dict[int, list[tuple]] = {}
        for pk, query_pk, document_pk, names, final, rank in candidates:
            _, doc_id, doc = documents[document_pk]
            row = (doc_id, doc, (names, rank), adjudicated.get(pk, final), judges.get(pk))
            group = by_query.get(query_pk)
            if group is None:
                by_query[query_pk] = [row]
            else:
                group.append(row)
        return by_doc_id(by_query)

    def _fetch(self, statement: tuple[str, tuple], ids: list[int]) -> list[tuple]:
        sql, params = statement
        array = "{" + ",".join(str(int(pk)) for pk in ids) + "}"  # a literal: no per-element adaptation
        with self.raw.cursor() as cursor:
            cursor.execute(sql, tuple(array if p is _IDS else p for p in params))
            return cursor.fetchall()




def _any(rows, field: str):
    """`field = ANY(<the batch's ids>)`, the ids bound when the statement runs."""
    meta = rows.model._meta
    column = (meta.pk if field == "pk" else meta.get_field(field)).column
    qualified = f"{connection.ops.quote_name(meta.db_table)}.{connection.ops.quote_name(column)}"
    return rows.filter(RawSQL(f"{qualified} = ANY(%s::bigint[])", (_IDS,), output_field=BooleanField()))


def _compiled(rows) -> tuple[str, tuple]:
    sql, params = rows.query.sql_with_params()
    assert sum(p is _IDS for p in params) == 1, "a batch statement takes exactly one id array"
    return sql, tuple(params)



def _raw_connection():
    """The database driver's connection under Django's (the helper thread cannot use Django's
    wrapper, which belongs to the thread that opened it)."""
    connection.ensure_connection()
    return connection.connection
