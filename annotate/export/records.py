"""The export's reading side: a collection's labelled pairs as a stream of query groups.

Memory stays flat however large the collection: a server-side cursor (`.iterator()`, a named
cursor on PostgreSQL) walks the queries in order of external id, and the queries are taken in
batches of about CHUNK candidates; each batch's candidates, documents, judgments and adjudications
are looked up by explicit ids (index scans, `= ANY(array)` on PostgreSQL) and dropped once the
batch is written. Only one batch is held at a time (a single query larger than CHUNK is one batch
by itself), so memory does not grow with the collection and no table is scanned once per batch.

Order: queries by external id, candidates by document external id, both compared as code points
(PostgreSQL's "C" collation = SQLite's BINARY = Python's str order), never by the database's
locale, so the same data gives the same file on every backend.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, Count, F, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Collate

from ..aggregation import aggregate
from ..models import Adjudication, AnnotatorProfile, Candidate, Collection, Document, Judgment, Query
from .filters import ExportParams
from .reports import annotator_reliabilities, latest_report, low_alpha_queries

CHUNK = 5000
AGGREGATE_CACHE_SIZE = 100_000
IDS_PER_QUERY = 5000  # ids in one IN list (SQLite allows 32766 parameters)
MAX_QUERIES_PER_BATCH = 500


@dataclass(slots=True)
class CandidateRecord:
    doc_id: str
    doc: str
    label: int
    soft_label: float
    weight: float
    n_judgments: int
    sources: list[str]


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
    report = latest_report(collection)
    context = _Context(collection, params, report)
    queries = Query.objects.filter(collection=collection)
    if params.split != "all":
        queries = queries.filter(split=params.split)
    sizes = (Candidate.objects.filter(query=OuterRef("pk")).order_by().values("query")
             .annotate(n=Count("pk")).values("n"))
    rows = (queries.annotate(n_candidates=Coalesce(Subquery(sizes), 0))
            .order_by(_code_point_order("external_id"))
            .values_list("pk", "external_id", "text", "split", "n_candidates")
            .iterator(chunk_size=2000))
    batch: list[tuple] = []
    size = 0
    for row in rows:
        batch.append(row)
        size += row[4]
        if size >= CHUNK or len(batch) >= MAX_QUERIES_PER_BATCH:
            yield from context.groups(batch, counts, progress)
            batch, size = [], 0
    if batch:
        yield from context.groups(batch, counts, progress)


class _Context:
    def __init__(self, collection: Collection, params: ExportParams, report):
        self.collection = collection
        self.params = params
        self.options = params.aggregation
        self.reliability = annotator_reliabilities(report)
        self.low_alpha_pks, self.low_alpha_ids = low_alpha_queries(report, params.min_query_alpha)
        self.human_filter = self._human_filter()
        self.any_adjudication = Adjudication.objects.filter(collection=collection).exists()
        self.aggregates: dict[tuple, object] = {}

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

    def groups(self, batch: list[tuple], counts: ReadCounts, progress) -> Iterator[QueryGroup]:
        params = self.params
        kept = []
        for row in batch:
            if row[0] in self.low_alpha_pks or row[1] in self.low_alpha_ids:
                counts.queries_low_alpha += 1
            else:
                kept.append(row)
        counts.queries_read += len(batch)
        query_pks = [row[0] for row in kept]
        by_query = self._candidates(query_pks)
        candidate_pks = [c[0] for candidates in by_query.values() for c in candidates]
        human, priors = self._judgments(candidate_pks, counts)
        adjudicated = self._adjudications(candidate_pks)
        done = 0
        for pk, external_id, text, split, _ in kept:
            records = []
            candidates = by_query.get(pk, ())
            done += len(candidates)
            counts.candidates_read += len(candidates)
            for record in self._records(candidates, human, priors, adjudicated, counts):
                records.append(record)
            if not records:
                continue
            if params.only_with_positive and not any(r.label >= params.positive_grade for r in records):
                counts.queries_without_positive += 1
                continue
            yield QueryGroup(external_id, text, split, records)
        if progress and done:
            progress(done)

    def _records(self, candidates, human, priors, adjudicated, counts) -> Iterator[CandidateRecord]:
        params, options, cache = self.params, self.options, self.aggregates
        for candidate_pk, doc_id, doc, sources, gold_grade in candidates:
            grades = tuple(human.get(candidate_pk, ()))
            prior = tuple(priors.get(candidate_pk, ()))
            final = adjudicated.get(candidate_pk, gold_grade)
            # Pairs share few distinct (grades, reliabilities) combinations: aggregate each once.
            key = (grades, prior, final)
            result = cache.get(key)
            if result is None:
                if len(cache) >= AGGREGATE_CACHE_SIZE:
                    cache.clear()
                result = cache[key] = aggregate(grades, prior, adjudicated=final, options=options)
            if result is None:
                counts.pairs_unlabelled += 1
                continue
            if not result.adjudicated and (result.n_judgments < params.min_judgments or result.weight < params.min_weight):
                counts.pairs_filtered += 1
                continue
            yield CandidateRecord(doc_id, doc, result.label, result.soft_label, result.weight, result.n_judgments,
                                  sources)

    def _candidates(self, query_pks: list[int]) -> dict[int, list[tuple]]:
        """query pk -> its candidates (pk, doc id, doc text, source names, gold grade), by doc id.

        Every read of a batch looks rows up by explicit ids (an index scan), never by a join the
        planner may answer with a scan of the whole table once per batch."""
        rows = _where_in(Candidate.objects.all(), "query_id", query_pks)
        if not self.params.include_gold:
            rows = rows.filter(is_gold=False)
        candidates = _fetch(rows.values_list("pk", "query_id", "document_id", "sources", "is_gold", "gold_grade"))
        documents: dict[int, tuple[str, str]] = {}
        for ids in _chunks([c[2] for c in candidates]):
            for pk, external_id, text in _fetch(_where_in(Document.objects.all(), "pk", ids).values_list("pk", "external_id", "text")):
                documents[pk] = (external_id, text)
        by_query: dict[int, list[tuple]] = {}
        for pk, query_pk, document_pk, sources, is_gold, gold_grade in candidates:
            doc_id, doc = documents[document_pk]
            by_query.setdefault(query_pk, []).append((pk, doc_id, doc, _source_names(sources), gold_grade if is_gold else None))
        for group in by_query.values():
            group.sort(key=lambda c: c[1])
        return by_query

    def _judgments(self, candidate_pks: list[int], counts: ReadCounts):
        """candidate pk -> [(grade, reliability)] of people, candidate pk -> [grade] of imported labels."""
        human: dict[int, list[tuple[int, float]]] = {}
        priors: dict[int, list[int]] = {}
        for ids in _chunks(candidate_pks):
            rows = (_where_in(Judgment.objects.all(), "candidate_id", ids).filter(grade__isnull=False, withdrawn=False, skipped=False)
                    .filter(self.human_filter)
                    # A fixed order keeps the floating-point sums, hence the file, identical run to run.
                    .order_by("candidate_id", "pk").values_list("candidate_id", "annotator_id", "grade"))
            counts.judgments_read += self._collect(rows, human, priors)
        return human, priors

    def _collect(self, rows, human: dict, priors: dict) -> int:
        reliability = self.reliability
        n = 0
        for candidate_pk, annotator_pk, grade in _fetch(rows):
            n += 1
            if annotator_pk is None:
                priors.setdefault(candidate_pk, []).append(grade)
            else:
                human.setdefault(candidate_pk, []).append((grade, reliability.get(annotator_pk, 1.0)))
        return n

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


def _source_names(sources: str | None) -> list[str]:
    """The sorted source names of a candidate's `sources` JSON text (as the database returns it)."""
    if not sources:
        return []
    try:
        value = _scan_json(sources, 0)[0]
    except StopIteration:  # leading whitespace or not JSON: let json.loads say what is wrong
        value = json.loads(sources)
    return sorted(value)


def _fetch(rows) -> list[tuple]:
    """A values_list query's rows straight from the cursor. The export's hot path: Django's per-row
    processing cost more than the query itself (JSON sources are decoded by the caller)."""
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
