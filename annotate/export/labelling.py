"""Which judgments an export counts and what each pair's record says: a ReadContext turns a batch's
candidate rows into query groups, aggregating each distinct set of judges once (aggregation.py).

It also holds the reads of a batch on backends other than PostgreSQL (SQLite): the same rows as
postgres.py's statements, by lists of explicit ids, with the judgments folded in Python.

A pair's judgments are aggregated in a canonical order (people by pk, then imported grades), which
fixes the floating-point sums, hence the file, whatever order the database returns them in.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
from django.db import connection
from django.db.models import BooleanField, Q, Subquery
from django.db.models.expressions import RawSQL

from ..formats import source_ranks
from ..grades import GRADE_MAX, GRADES
from ..models import (
    MACHINE_SOURCE,
    Adjudication,
    AnnotatorProfile,
    Candidate,
    Collection,
    Document,
    Judgment,
)
from ..quality.annotator_model import SOURCE_MARK, judge_key, kept_or_fitted
from .aggregation import DIGITS, MODEL, aggregate
from .batches import by_doc_id
from .filters import ExportParams
from .records import CandidateRecord, Judged, QueryGroup, ReadCounts
from .reports import annotator_reliabilities, low_alpha_queries

GRADE_VALUES = np.arange(len(GRADES), dtype=float)
AGGREGATE_CACHE_SIZE = 100_000
IDS_PER_QUERY = 5000  # ids in one IN list (SQLite allows 32766 parameters)
NAMES_PER_OUTCOME = 1000

_UNLABELLED = "unlabelled"  # outcomes of a pair that give no record
_FILTERED = "filtered"


class _Outcome:
    """A judgment key's aggregate (or why it gives no record), with the Judged of each set of
    source names seen with it."""
    __slots__ = ("judgments_read", "result", "judged")

    def __init__(self, judgments_read: int, result):
        self.judgments_read = judgments_read
        self.result = result  # (label, soft label, weight, n judgments), _UNLABELLED or _FILTERED
        self.judged: dict[str | None, Judged] = {}


class ReadContext:
    """What one export read needs throughout: its parameters, the latest report's reliabilities and
    low-alpha queries, and the outcomes aggregated so far (by judgment key)."""

    def __init__(self, collection: Collection, params: ExportParams, report):
        self.collection = collection
        self.params = params
        self.options = params.aggregation
        self.reliability = annotator_reliabilities(report)
        self.low_alpha_pks, self.low_alpha_ids = low_alpha_queries(report, params.min_query_alpha)
        self.human_filter = self._human_filter()
        self.any_adjudication = Adjudication.objects.filter(collection=collection).exists()
        # The annotator model (method "model"): fitted once per export on the judgments it counts.
        default_filters = (params.guideline_version is None and not params.since and not params.until
                           and params.include_simulated)
        self.annotator_model = (kept_or_fitted(report, self.counted_judgments(), collection=collection,
                                               include_sources=params.priors != "never",
                                               default_filters=default_filters)
                                if params.method == MODEL else None)
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
        """Standing grades (imported labels included) that pass the export's filters on people's judgments."""
        return Judgment.objects.grades().filter(self.human_filter)

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
        """The outcome of a judgment key: judge_key per judgment joined by ",", in any order. The judges are put in one canonical order (people by pk,
        imported grades by grade) before aggregating, so the floating-point sums, hence the file,
        do not depend on the order the database returned them in; each set of judges is
        aggregated once."""
        parts = judges.split(",") if judges else []
        same_judges = (tuple(sorted(parts)), final)  # the same for any order of the same judges
        outcome = self.canonical.get(same_judges)
        if outcome is None:
            people: list[tuple[int, int]] = []
            priors: list[tuple[str, int]] = []
            for judge in parts:
                who, _, grade = judge.rpartition(":")
                if who.startswith(SOURCE_MARK):
                    priors.append((who, int(grade)))
                else:
                    people.append((int(who), int(grade)))
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

    def _aggregate(self, people: list[tuple[int, int]], priors: list[tuple[str, int]], final: int | None):
        params = self.params
        if self.annotator_model is not None:
            return self._from_model(people, priors, final)
        reliability = self.reliability
        human = [(grade, reliability.get(annotator, 1.0)) for annotator, grade in people]
        result = aggregate(human, [grade for _, grade in priors], adjudicated=final, options=self.options)
        if result is None:
            return _UNLABELLED
        if not result.adjudicated and (result.n_judgments < params.min_judgments or result.weight < params.min_weight):
            return _FILTERED
        return result.label, result.soft_label, result.weight, result.n_judgments, None

    def _from_model(self, people: list[tuple[int, int]], priors: list[tuple[str, int]], final: int | None):
        """label = the posterior's most probable grade, soft_label = its expected grade / 3, weight =
        the posterior probability of the label, grade_probs = the posterior. Imported labels take
        part as the `priors` mode says (fallback: only where no person graded the pair)."""
        params = self.params
        if final is not None:  # adjudicated or gold: the grade is known
            probs = tuple(1.0 if grade == final else 0.0 for grade in GRADES)
            return final, round(final / GRADE_MAX, DIGITS), 1.0, len(people), probs
        judges = [(str(annotator), grade) for annotator, grade in people]
        if priors and (params.priors == "always" or (params.priors == "fallback" and not people)):
            judges += priors
        if not judges:
            return _UNLABELLED
        posterior = self.annotator_model.posterior(judges)
        label = int(posterior.argmax())
        weight = round(float(posterior[label]), DIGITS)
        if len(judges) < params.min_judgments or weight < params.min_weight:
            return _FILTERED
        soft = round(float(posterior @ GRADE_VALUES) / GRADE_MAX, DIGITS)
        return label, soft, weight, len(judges), tuple(round(float(p), DIGITS) for p in posterior)

    def _judged(self, outcome: _Outcome, names_key) -> Judged:
        """The Judged of an outcome with a candidate's source names and best retrieval rank: from
        its `sources` JSON object (SQLite), or from (JSON array of names, rank) as PostgreSQL's
        statement returns them."""
        if len(outcome.judged) >= NAMES_PER_OUTCOME:  # on SQLite the key is each candidate's sources
            outcome.judged.clear()
        if isinstance(names_key, tuple):
            names, rank = _source_names(names_key[0]), names_key[1]
        else:
            names, rank = _names_and_rank(names_key)
        judged = outcome.judged[names_key] = Judged(*outcome.result, names, rank)
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
        return by_doc_id(by_query)

    def _judgment_keys(self, candidate_pks: list[int]) -> dict[int, str]:
        """candidate pk -> its judgment key (as the PostgreSQL statement builds it)."""
        judges: dict[int, list[str]] = {}
        for ids in _chunks(candidate_pks):
            rows = (_where_in(self.counted_judgments(), "candidate_id", ids)
                    .order_by("candidate_id", "pk").values_list("candidate_id", "annotator_id", "source", "grade"))
            for candidate_pk, annotator_pk, source, grade in _fetch(rows):
                judges.setdefault(candidate_pk, []).append(judge_key(annotator_pk, source, grade))
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


def _decode(sources: str):
    try:
        return _scan_json(sources, 0)[0]
    except StopIteration:  # leading whitespace or not JSON: let json.loads say what is wrong
        return json.loads(sources)


def _source_names(sources: str | None) -> tuple[str, ...]:
    """The sorted source names of a candidate's `sources` JSON text (as the database returns it):
    the keys of the object, or the items of an array of names."""
    return tuple(sorted(_decode(sources))) if sources else ()


def best_rank(sources) -> int | None:
    """The best (smallest) integer `rank` among a `sources` object's retrieval entries; None when none
    has one. The machine judge's ranking (the served model's, kept for the judging order) is not a
    retrieval rank: training's hardest-first negatives stay what retrieval proposed."""
    ranks = [rank for name, rank in source_ranks(sources).items() if name != MACHINE_SOURCE]
    return min(ranks) if ranks else None


def _names_and_rank(sources: str | None) -> tuple[tuple[str, ...], int | None]:
    if not sources:
        return (), None
    value = _decode(sources)
    return tuple(sorted(value)), best_rank(value) if isinstance(value, dict) else None




def _fetch(rows) -> list[tuple]:
    """A values_list query's rows straight from the cursor. The export's hot path: Django's per-row
    processing cost more than the query itself (JSON sources are decoded by the caller)."""
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
