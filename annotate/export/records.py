"""The export's reading side: a collection's labelled pairs as a stream of query groups.

Memory stays flat however large the collection: a server-side cursor (`.iterator()`, a named
cursor on PostgreSQL) walks the queries in order of external id, and the queries are taken in
batches of about CHUNK candidates; each batch is read by explicit ids (index scans, `= ANY(array)`
on PostgreSQL) and dropped once it is written. Only one batch is handled at a time (plus, on
PostgreSQL, the next one being read), so memory does not grow with the collection and no table is
scanned once per batch.

How a batch is read depends on the backend:

- PostgreSQL (_PostgresBatches): four statements per batch, each by one array of explicit ids:
  the candidates of the batch's queries (with their source names, `jsonb_path_query_array(sources,
  '$.keyvalue().key')`, and gold grade), their documents, their judgments folded into one text key
  per candidate (`string_agg('annotator:grade', ',')`: one row per pair on the wire instead of one
  per judgment) and, if the collection has any, their adjudications. While the main thread turns a
  batch into records and writes it, the next batch's statements run on the same connection from a
  helper thread, so the database and this process work at the same time; the two threads never use
  the connection at once.
- Other backends (SQLite): the same reads with `IN` lists, judgments folded in Python.

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

import contextlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter

from django.contrib.postgres.aggregates import StringAgg
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Collate, Concat

from ..aggregation import aggregate
from ..models import (
    Adjudication,
    AnnotatorProfile,
    Candidate,
    Collection,
    Document,
    Judgment,
    Query,
)
from .filters import ExportParams
from .reports import annotator_reliabilities, latest_report, low_alpha_queries

CHUNK = 5000
AGGREGATE_CACHE_SIZE = 100_000
IDS_PER_QUERY = 5000  # ids in one IN list (SQLite allows 32766 parameters)
QUERIES_PER_FETCH = 2000
NAMES_PER_OUTCOME = 1000
MAX_QUERIES_PER_BATCH = 500

_UNLABELLED = "unlabelled"  # outcomes of a pair that give no record
_FILTERED = "filtered"


@dataclass(slots=True, eq=False)
class Judged:
    """What the export says about a pair besides its document: the aggregate and the candidate's
    source names. One object is shared by every pair with the same (a collection has few), so a
    writer can encode it once: it hashes by identity, and a dict holding it keeps it alive."""
    label: int
    soft_label: float
    weight: float
    n_judgments: int
    sources: tuple[str, ...]  # sorted


@dataclass(slots=True)
class CandidateRecord:
    doc_id: str
    doc: str
    judged: Judged

    @property
    def label(self) -> int:
        return self.judged.label

    @property
    def soft_label(self) -> float:
        return self.judged.soft_label

    @property
    def weight(self) -> float:
        return self.judged.weight

    @property
    def n_judgments(self) -> int:
        return self.judged.n_judgments

    @property
    def sources(self) -> tuple[str, ...]:
        return self.judged.sources


class _Outcome:
    """A judgment key's aggregate (or why it gives no record), with the Judged of each set of
    source names seen with it."""
    __slots__ = ("judgments_read", "result", "judged")

    def __init__(self, judgments_read: int, result):
        self.judgments_read = judgments_read
        self.result = result  # (label, soft label, weight, n judgments), _UNLABELLED or _FILTERED
        self.judged: dict[str | None, Judged] = {}


@dataclass(slots=True)
class QueryGroup:
    query_id: str
    query: str
    split: str
    candidates: list[CandidateRecord]


@dataclass
class ReadCounts:
    queries_read: int = 0
    candidates_read: int = 0
    judgments_read: int = 0
    pairs_unlabelled: int = 0
    pairs_filtered: int = 0
    queries_low_alpha: int = 0
    queries_without_positive: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _code_point_order(field: str):
    collation = "C" if connection.vendor == "postgresql" else "BINARY"
    return Collate(F(field), collation)


def query_groups(collection: Collection, params: ExportParams, counts: ReadCounts,
                 progress: Callable[[int], None] | None = None) -> Iterator[QueryGroup]:
    """The labelled query groups of the collection under `params`, in export order."""
    context = _Context(collection, params, latest_report(collection))
    if connection.vendor == "postgresql":
        for batch, fetched in _read_ahead(_PostgresBatches(context, _query_listing(collection, params))):
            yield from context.groups(context.kept(batch, counts), _PostgresBatches.rows(*fetched), counts, progress)
    else:
        for batch in _query_batches(collection, params):
            batch = context.kept(batch, counts)
            yield from context.groups(batch, context.candidate_rows(batch), counts, progress)


def _query_listing(collection: Collection, params: ExportParams):
    """Rows (pk, external id, text, split, number of candidates) of the queries, in export order."""
    queries = Query.objects.filter(collection=collection)
    if params.split != "all":
        queries = queries.filter(split=params.split)
    sizes = (Candidate.objects.filter(query=OuterRef("pk")).order_by().values("query")
             .annotate(n=Count("pk")).values("n"))
    return (queries.annotate(n_candidates=Coalesce(Subquery(sizes), 0))
            .order_by(_code_point_order("external_id"))
            .values_list("pk", "external_id", "text", "split", "n_candidates"))


def _query_batches(collection: Collection, params: ExportParams) -> Iterator[list[tuple]]:
    return _batched(_query_listing(collection, params).iterator(chunk_size=QUERIES_PER_FETCH))


def _batched(rows: Iterable[tuple]) -> Iterator[list[tuple]]:
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


def _read_ahead(reads: _PostgresBatches) -> Iterator[tuple[list, tuple]]:
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


class _Ids:
    """Stands for a batch's id array in a statement compiled once (see _PostgresBatches)."""


_IDS = _Ids()


class _PostgresBatches:
    """PostgreSQL reads of a batch: four statements, each looking rows up by one array of explicit
    ids (`= ANY(%s)`: an index or bitmap scan whatever the collection's size).

    The statements are compiled by the ORM once, here in the main thread, with a placeholder for the
    ids; `fetch` runs them on the driver's connection, so it may run in the helper thread (Django's
    connection wrapper belongs to the thread that opened it). Judgments arrive folded per candidate
    (`string_agg`), one row per pair instead of one per judgment, in no particular order: the
    aggregation puts them in a canonical order itself (_Context._outcome)."""

    def __init__(self, context: _Context, listing):
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
        self.candidates = _compiled(candidates.annotate(names=names, final=final)
                                    .values_list("pk", "query_id", "document_id", "names", "final"))
        self.documents = _compiled(_any(Document.objects.all(), "pk").values_list("pk", "external_id", "text"))
        judge = Concat(Coalesce(Cast("annotator_id", CharField()), Value("")), Value(":"), Cast("grade", CharField()),
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
            self.batches = _batched(self._query_rows())
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
        """The batch's candidates by query (main thread): see _Context.groups."""
        documents = {row[0]: row for row in documents}
        judges = dict(judgments)
        adjudicated: dict[int, int] = {}
        for candidate_pk, grade in adjudications:
            adjudicated.setdefault(candidate_pk, grade)  # the latest comes first
        by_query: dict[int, list[tuple]] = {}
        for pk, query_pk, document_pk, names, final in candidates:
            _, doc_id, doc = documents[document_pk]
            row = (doc_id, doc, names, adjudicated.get(pk, final), judges.get(pk))
            group = by_query.get(query_pk)
            if group is None:
                by_query[query_pk] = [row]
            else:
                group.append(row)
        return _by_doc_id(by_query)

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


def _by_doc_id(by_query: dict[int, list[tuple]]) -> dict[int, list[tuple]]:
    """Each query's candidates in order of document id (unique in a collection)."""
    first = itemgetter(0)
    for group in by_query.values():
        group.sort(key=first)
    return by_query


class _Context:
    def __init__(self, collection: Collection, params: ExportParams, report):
        self.collection = collection
        self.params = params
        self.options = params.aggregation
        self.reliability = annotator_reliabilities(report)
        self.low_alpha_pks, self.low_alpha_ids = low_alpha_queries(report, params.min_query_alpha)
        self.human_filter = self._human_filter()
        self.any_adjudication = Adjudication.objects.filter(collection=collection).exists()
        self.outcomes: dict[tuple, _Outcome] = {}  # by (judgment key, final grade)
        self.canonical: dict[tuple, _Outcome] = {}  # by (sorted judges, final grade)

    def _human_filter(self) -> Q:
        """Which people's judgments count; imported labels are never filtered by these."""
        params = self.params
        human = Q(annotator__isnull=False)
        if params.guideline_version is not None:
            human &= Q(guideline_version=params.guideline_version)
        if params.since:
            human &= Q(updated_at__gte=params.since_time)
        if params.until:
            human &= Q(updated_at__lte=params.until_time)
        if not params.include_simulated:
            simulated = AnnotatorProfile.objects.filter(is_simulated=True).values("user_id")
            human &= ~Q(annotator_id__in=Subquery(simulated))
        return human | Q(annotator__isnull=True)

    def counted_judgments(self):
        return Judgment.objects.filter(grade__isnull=False, withdrawn=False, skipped=False).filter(self.human_filter)

    def kept(self, batch: list[tuple], counts: ReadCounts) -> list[tuple]:
        """The batch without the queries whose agreement is too low."""
        kept = []
        for row in batch:
            if row[0] in self.low_alpha_pks or row[1] in self.low_alpha_ids:
                counts.queries_low_alpha += 1
            else:
                kept.append(row)
        counts.queries_read += len(batch)
        return kept

    # --- turning candidate rows into query groups (every backend) -----------------------------
    def groups(self, batch: list[tuple], by_query: dict[int, list[tuple]], counts: ReadCounts,
               progress) -> Iterator[QueryGroup]:
        """by_query: query pk -> (doc id, doc text, source names key, final grade, judgment key)
        per candidate, in order of doc id."""
        params = self.params
        outcomes = self.outcomes
        judgments = unlabelled = filtered = 0
        for pk, external_id, text, split, _ in batch:
            records = []
            for doc_id, doc, names_key, final, judges in by_query.get(pk, ()):
                outcome = outcomes.get((judges, final)) or self._outcome(judges, final)
                judgments += outcome.judgments_read
                if outcome.result is _UNLABELLED:
                    unlabelled += 1
                elif outcome.result is _FILTERED:
                    filtered += 1
                else:
                    judged = outcome.judged.get(names_key) or self._judged(outcome, names_key)
                    records.append(CandidateRecord(doc_id, doc, judged))
            if not records:
                continue
            if params.only_with_positive and not any(r.label >= params.positive_grade for r in records):
                counts.queries_without_positive += 1
                continue
            yield QueryGroup(external_id, text, split, records)
        read = sum(len(group) for group in by_query.values())
        counts.candidates_read += read
        counts.judgments_read += judgments
        counts.pairs_unlabelled += unlabelled
        counts.pairs_filtered += filtered
        if progress and read:
            progress(read)

    def _outcome(self, judges: str | None, final: int | None) -> _Outcome:
        """The outcome of a judgment key: "annotator pk:grade" joined by ",", an empty pk for an
        imported label, in any order. The judges are put in one canonical order (people by pk,
        imported grades by grade) before aggregating, so the floating-point sums, hence the file,
        do not depend on the order the database returned them in; each set of judges is
        aggregated once."""
        parts = judges.split(",") if judges else []
        same_judges = (tuple(sorted(parts)), final)  # the same for any order of the same judges
        outcome = self.canonical.get(same_judges)
        if outcome is None:
            people: list[tuple[int, int]] = []
            priors: list[int] = []
            for judge in parts:
                annotator, _, grade = judge.partition(":")
                if annotator:
                    people.append((int(annotator), int(grade)))
                else:
                    priors.append(int(grade))
            people.sort()
            priors.sort()
            outcome = _Outcome(len(parts), self._aggregate(people, priors, final))
            if len(self.canonical) >= AGGREGATE_CACHE_SIZE:
                self.canonical.clear()
            self.canonical[same_judges] = outcome
        if len(self.outcomes) >= AGGREGATE_CACHE_SIZE:
            self.outcomes.clear()
        self.outcomes[(judges, final)] = outcome
        return outcome

    def _aggregate(self, people: list[tuple[int, int]], priors: list[int], final: int | None):
        reliability = self.reliability
        human = [(grade, reliability.get(annotator, 1.0)) for annotator, grade in people]
        result = aggregate(human, priors, adjudicated=final, options=self.options)
        params = self.params
        if result is None:
            return _UNLABELLED
        if not result.adjudicated and (result.n_judgments < params.min_judgments or result.weight < params.min_weight):
            return _FILTERED
        return result.label, result.soft_label, result.weight, result.n_judgments

    def _judged(self, outcome: _Outcome, names_key: str | None) -> Judged:
        """The Judged of an outcome with the source names of a `sources` JSON object, or of the
        JSON array of its names."""
        if len(outcome.judged) >= NAMES_PER_OUTCOME:  # on SQLite the key is each candidate's sources
            outcome.judged.clear()
        judged = outcome.judged[names_key] = Judged(*outcome.result, _source_names(names_key))
        return judged

    def _batch_candidates(self, query_pks: list[int]):
        rows = _where_in(Candidate.objects.all(), "query_id", query_pks)
        if not self.params.include_gold:
            rows = rows.filter(is_gold=False)
        return rows

    # --- other backends: separate reads, folded in Python -----------------------------------
    def candidate_rows(self, batch: list[tuple]) -> dict[int, list[tuple]]:
        """The batch's candidates by query (see groups), by queries with lists of explicit ids."""
        candidates = _fetch(self._batch_candidates([row[0] for row in batch])
                            .values_list("pk", "query_id", "document_id", "sources", "is_gold", "gold_grade"))
        documents: dict[int, tuple[str, str]] = {}
        for ids in _chunks([c[2] for c in candidates]):
            rows = _where_in(Document.objects.all(), "pk", ids).values_list("pk", "external_id", "text")
            for pk, external_id, text in _fetch(rows):
                documents[pk] = (external_id, text)
        candidate_pks = [c[0] for c in candidates]
        judges = self._judgment_keys(candidate_pks)
        adjudicated = self._adjudications(candidate_pks)
        by_query: dict[int, list[tuple]] = {}
        for pk, query_pk, document_pk, sources, is_gold, gold_grade in candidates:
            doc_id, doc = documents[document_pk]
            final = adjudicated.get(pk, gold_grade if is_gold else None)
            by_query.setdefault(query_pk, []).append((doc_id, doc, sources, final, judges.get(pk)))
        return _by_doc_id(by_query)

    def _judgment_keys(self, candidate_pks: list[int]) -> dict[int, str]:
        """candidate pk -> its judgment key (as the PostgreSQL statement builds it)."""
        judges: dict[int, list[str]] = {}
        for ids in _chunks(candidate_pks):
            rows = (_where_in(self.counted_judgments(), "candidate_id", ids)
                    .order_by("candidate_id", "pk").values_list("candidate_id", "annotator_id", "grade"))
            for candidate_pk, annotator_pk, grade in _fetch(rows):
                judges.setdefault(candidate_pk, []).append(f"{'' if annotator_pk is None else annotator_pk}:{grade}")
        return {pk: ",".join(keys) for pk, keys in judges.items()}

    def _adjudications(self, candidate_pks: list[int]) -> dict[int, int]:
        """candidate pk -> the latest adjudicated grade."""
        latest: dict[int, int] = {}
        if not self.any_adjudication:
            return latest
        for ids in _chunks(candidate_pks):
            rows = (_where_in(Adjudication.objects.all(), "candidate_id", ids)
                    .order_by("candidate_id", "-created_at", "-pk").values_list("candidate_id", "grade"))
            for candidate_pk, grade in _fetch(rows):
                latest.setdefault(candidate_pk, grade)
        return latest


def _where_in(rows, field: str, ids: list[int]):
    """`field IN ids`; on PostgreSQL as `= ANY(%s)` with one array parameter: quoting thousands of
    separate parameters cost several times the query itself."""
    if connection.vendor != "postgresql":
        return rows.filter(**{f"{field}__in": ids})
    meta = rows.model._meta
    column = (meta.pk if field == "pk" else meta.get_field(field)).column
    qualified = f"{connection.ops.quote_name(meta.db_table)}.{connection.ops.quote_name(column)}"
    array = "{" + ",".join(str(int(pk)) for pk in ids) + "}"  # a literal: no per-element adaptation
    return rows.filter(RawSQL(f"{qualified} = ANY(%s::bigint[])", (array,), output_field=BooleanField()))


def _chunks(ids: list[int], size: int = IDS_PER_QUERY) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


_scan_json = json.JSONDecoder().scan_once  # the C scanner, without json.loads' per-call wrapping


def _source_names(sources: str | None) -> tuple[str, ...]:
    """The sorted source names of a candidate's `sources` JSON text (as the database returns it):
    the keys of the object, or the items of an array of names."""
    if not sources:
        return ()
    try:
        value = _scan_json(sources, 0)[0]
    except StopIteration:  # leading whitespace or not JSON: let json.loads say what is wrong
        value = json.loads(sources)
    return tuple(sorted(value))


def _raw_connection():
    """The database driver's connection under Django's (the helper thread cannot use Django's
    wrapper, which belongs to the thread that opened it)."""
    connection.ensure_connection()
    return connection.connection


def _fetch(rows) -> list[tuple]:
    """A values_list query's rows straight from the cursor. The export's hot path: Django's per-row
    processing cost more than the query itself (JSON sources are decoded by the caller)."""
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
