"""Adjudication: staff settle a candidate with a final grade and a reason.

Each decision is its own Adjudication row (who, when, grade, why), never an edit of anyone's
judgment; the latest row of a candidate is its final grade and overrides the aggregate in the
export (annotate/export/labelling.py reads the latest per candidate). A new decision on the same
candidate adds a row, so the history of decisions stays.

What needs a look (`needs_adjudication`): the queries of the latest report whose ordinal alpha is
below the collection's `adjudication_alpha`, and single candidates on which people's grades lie
`DISAGREEMENT_SPREAD` or more apart (e.g. a 0 and a 2), each with whether it is settled already.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef
from django.utils.translation import gettext as _

from ..grades import GRADE_MAX, GRADE_MIN
from ..models import (
    Adjudication,
    AgreementReport,
    Candidate,
    Collection,
    Judgment,
    Query,
)

DISAGREEMENT_SPREAD = 2
MAX_REASON_CHARS = 2000


class AdjudicationError(ValueError):
    """A decision that cannot be recorded; the message names the problem."""


@transaction.atomic
def adjudicate(*, candidate: Candidate, grade: int, reason: str, decided_by) -> Adjudication:
    """Record staff's final grade for a candidate, with the reason."""
    if not getattr(decided_by, "is_staff", False):
        raise AdjudicationError(_("only staff can adjudicate"))
    if isinstance(grade, bool) or not isinstance(grade, int) or not GRADE_MIN <= grade <= GRADE_MAX:
        raise AdjudicationError(_("grade must be an integer %(low)d..%(high)d, got %(value)s")
                                % {"low": GRADE_MIN, "high": GRADE_MAX, "value": repr(grade)})
    reason = (reason or "").strip()
    if not reason:
        raise AdjudicationError(_("a final grade needs a reason"))
    if len(reason) > MAX_REASON_CHARS:
        raise AdjudicationError(_("the reason is longer than %(max)d characters") % {"max": MAX_REASON_CHARS})
    return Adjudication.objects.create(collection_id=candidate.collection_id, candidate=candidate, grade=grade,
                                       reason=reason, decided_by=decided_by)


def _people_judgments(collection: Collection):
    """Every person's standing judgment of the collection: graded or skipped, not withdrawn."""
    return Judgment.objects.filter(collection=collection).by_people().standing()


def latest_adjudication(candidate: Candidate) -> Adjudication | None:
    return candidate.adjudications.select_related("decided_by").order_by("-created_at", "-pk").first()


@dataclass(frozen=True)
class GradeCell:
    annotator: str
    is_simulated: bool
    grade: int | None
    skipped: bool
    skip_reason: str
    note: str
    flagged: bool


@dataclass
class CandidateSheet:
    candidate: Candidate
    cells: list[GradeCell]
    final: Adjudication | None
    history: list[Adjudication]
    columns: list[GradeCell | None] = None  # one per annotator of the query, in the sheet's order
    references: list[tuple[str, int | None]] = field(default_factory=list)  # imported labels: (source, grade)

    @property
    def grades(self) -> list[int]:
        return [c.grade for c in self.cells if c.grade is not None]

    @property
    def spread(self) -> int:
        return max(self.grades) - min(self.grades) if self.grades else 0


def query_sheet(query: Query) -> tuple[list[str], list[CandidateSheet]]:
    """Everyone's grades and notes on every candidate of a query, side by side (staff only).

    Returns the annotators (column order) and one sheet per candidate, most disputed first."""
    candidates = list(Candidate.objects.filter(query=query).select_related("document").order_by("pk"))
    judgments = (_people_judgments(query.collection).filter(candidate__query=query)
                 .select_related("annotator", "annotator__annotator_profile").order_by("annotator__username"))
    per_candidate: dict[int, list[GradeCell]] = {}
    annotators: list[str] = []
    for judgment in judgments:
        name = judgment.annotator.username
        if name not in annotators:
            annotators.append(name)
        profile = getattr(judgment.annotator, "annotator_profile", None)
        per_candidate.setdefault(judgment.candidate_id, []).append(GradeCell(
            annotator=name, is_simulated=bool(profile and profile.is_simulated), grade=judgment.grade,
            skipped=judgment.skipped, skip_reason=judgment.skip_reason, note=judgment.note, flagged=judgment.flagged,
        ))
    decisions: dict[int, list[Adjudication]] = {}
    for decision in (Adjudication.objects.filter(candidate__query=query).select_related("decided_by")
                     .order_by("-created_at", "-pk")):
        decisions.setdefault(decision.candidate_id, []).append(decision)
    sheets = [
        CandidateSheet(candidate, per_candidate.get(candidate.pk, []),
                       (decisions.get(candidate.pk) or [None])[0], decisions.get(candidate.pk, []))
        for candidate in candidates
    ]
    annotators.sort()
    for sheet in sheets:
        by_name = {cell.annotator: cell for cell in sheet.cells}
        sheet.columns = [by_name.get(name) for name in annotators]
    by_candidate = {sheet.candidate.pk: sheet for sheet in sheets}
    # Imported prior labels (qrels, labelled files): shown beside people's grades, never among them.
    for candidate_id, source, grade in (Judgment.objects.filter(candidate__query=query, annotator__isnull=True)
                                        .order_by("source").values_list("candidate_id", "source", "grade")):
        by_candidate[candidate_id].references.append((source, grade))
    sheets.sort(key=lambda sheet: (-sheet.spread, sheet.candidate.pk))
    return annotators, sheets


def disagreements(collection: Collection, *, spread: int = DISAGREEMENT_SPREAD, limit: int = 200) -> list[dict]:
    """Candidates whose people's grades lie `spread` or more apart: unsettled first, widest first."""
    rows = (_people_judgments(collection).filter(skipped=False).values("candidate_id")
            .annotate(low=Min("grade"), high=Max("grade"), n=Count("id"))
            .annotate(width=F("high") - F("low")).filter(width__gte=spread)
            .annotate(settled=Exists(Adjudication.objects.filter(candidate_id=OuterRef("candidate_id"))))
            .order_by("settled", "-width", "candidate_id")[:limit])
    found = list(rows)
    names = {pk: (q, d, qpk) for pk, q, d, qpk in Candidate.objects.filter(pk__in=[r["candidate_id"] for r in found])
             .values_list("pk", "query__external_id", "document__external_id", "query_id")}
    return [{**row, "query": names[row["candidate_id"]][0], "document": names[row["candidate_id"]][1],
             "query_id": names[row["candidate_id"]][2]} for row in found]


def needs_adjudication(collection: Collection, report=None) -> list[dict]:
    """Low-alpha queries of the latest report, each with how many of its candidates are settled."""
    report = report if report is not None else AgreementReport.objects.latest_for(collection)
    if report is None or not isinstance(report.per_query, list):
        return []
    entries = [dict(entry) for entry in report.per_query if isinstance(entry, dict) and "query_id" in entry]
    query_ids = [entry["query_id"] for entry in entries]
    settled = dict(Adjudication.objects.filter(candidate__query_id__in=query_ids).values("candidate__query_id")
                   .annotate(n=Count("candidate_id", distinct=True)).values_list("candidate__query_id", "n"))
    total = dict(Candidate.objects.filter(query_id__in=query_ids).values("query_id")
                 .annotate(n=Count("id")).values_list("query_id", "n"))
    existing = set(Query.objects.filter(pk__in=query_ids).values_list("pk", flat=True))
    for entry in entries:
        entry["settled"] = settled.get(entry["query_id"], 0)
        entry["candidates"] = total.get(entry["query_id"], 0)
    entries = [entry for entry in entries if entry["query_id"] in existing]
    entries.sort(key=lambda e: (e["settled"] >= e["candidates"], e.get("alpha_ordinal", 0)))
    return entries


__all__ = ["AdjudicationError", "adjudicate", "disagreements", "latest_adjudication", "needs_adjudication",
           "query_sheet"]
