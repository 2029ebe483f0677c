"""The export's reading side: a collection's labelled pairs as a stream of query groups.

Memory stays flat however large the collection: a server-side cursor (`.iterator()`, a named
cursor on PostgreSQL) walks the queries in order of external id, and the queries are taken in
batches of about CHUNK candidates; each batch's candidates, judgments and adjudications are read
with one query apiece and dropped once the batch is written. Only one batch is held at a time (a
single query larger than CHUNK is one batch by itself).

Order: queries by external id, candidates by document external id, both compared as code points
(PostgreSQL's "C" collation = SQLite's BINARY = Python's str order), never by the database's
locale, so the same data gives the same file on every backend.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Collate

from ..aggregation import aggregate
from ..models import Adjudication, AnnotatorProfile, Candidate, Collection, Judgment, Query
from .filters import ExportParams
from .reports import annotator_reliabilities, latest_report, low_alpha_queries

CHUNK = 5000
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
        human, priors = self._judgments(query_pks, counts)
        adjudicated = self._adjudications(query_pks)
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
        params, options = self.params, self.options
        for candidate_pk, doc_id, doc, sources, gold_grade in candidates:
            grades = human.get(candidate_pk, ())
            final = adjudicated.get(candidate_pk, gold_grade)
            result = aggregate(grades, priors.get(candidate_pk, ()), adjudicated=final, options=options)
            if result is None:
                counts.pairs_unlabelled += 1
                continue
            if not result.adjudicated and (result.n_judgments < params.min_judgments or result.weight < params.min_weight):
                counts.pairs_filtered += 1
                continue
            yield CandidateRecord(doc_id, doc, result.label, result.soft_label, result.weight, result.n_judgments,
                                  sorted(sources or ()))

    def _candidates(self, query_pks: list[int]) -> dict[int, list[tuple]]:
        rows = Candidate.objects.filter(query_id__in=query_pks)
        if not self.params.include_gold:
            rows = rows.filter(is_gold=False)
        by_query: dict[int, list[tuple]] = {}
        for pk, query_pk, doc_id, doc, sources, is_gold, gold_grade in rows.values_list(
                "pk", "query_id", "document__external_id", "document__text", "sources", "is_gold", "gold_grade"):
            by_query.setdefault(query_pk, []).append((pk, doc_id, doc, sources, gold_grade if is_gold else None))
        for candidates in by_query.values():
            candidates.sort(key=lambda c: c[1])
        return by_query

    def _judgments(self, query_pks: list[int], counts: ReadCounts):
        """candidate pk -> [(grade, reliability)] of people, candidate pk -> [grade] of imported labels."""
        rows = (Judgment.objects.filter(candidate__query_id__in=query_pks, grade__isnull=False, withdrawn=False,
                                        skipped=False)
                .filter(self.human_filter)
                # A fixed order keeps the floating-point sums, hence the file, identical run to run.
                .order_by("candidate_id", "pk").values_list("candidate_id", "annotator_id", "grade"))
        human: dict[int, list[tuple[int, float]]] = {}
        priors: dict[int, list[int]] = {}
        reliability = self.reliability
        n = 0
        for candidate_pk, annotator_pk, grade in rows:
            n += 1
            if annotator_pk is None:
                priors.setdefault(candidate_pk, []).append(grade)
            else:
                human.setdefault(candidate_pk, []).append((grade, reliability.get(annotator_pk, 1.0)))
        counts.judgments_read += n
        return human, priors

    def _adjudications(self, query_pks: list[int]) -> dict[int, int]:
        """candidate pk -> the latest adjudicated grade."""
        latest: dict[int, int] = {}
        rows = (Adjudication.objects.filter(candidate__query_id__in=query_pks)
                .order_by("candidate_id", "-created_at", "-pk").values_list("candidate_id", "grade"))
        for candidate_pk, grade in rows:
            latest.setdefault(candidate_pk, grade)
        return latest
