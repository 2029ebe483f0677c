"""Judgments of a derived source -- the click labels, the machine judge -- written again on each refit
(and the machine judge's ranking, which the judging order reads).

A derived source is a judge like an imported file (annotator None, `source` its name), so the
annotator model gives it a confusion of its own and never pools it with people. Unlike a file, it
is recomputed: `write_source_grades` adds the pairs it has not graded yet, revises the ones whose
grade moved (with a JudgmentRevision, as a re-import does: every change of a judgment is kept), and
leaves the rest alone. Pairs it no longer grades keep their last grade: a source's evidence about
a pair only grows (more clicks, a better model), it is never taken back.
"""
from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from .models import Candidate, Collection, Judgment, JudgmentRevision, Query


@transaction.atomic
def write_source_grades(*, collection: Collection, source: str, grades: Mapping[int, int], reason: str) -> tuple[int, int]:
    """{candidate pk: grade} of `source` into the collection; returns (added, changed)."""
    existing = {candidate: (pk, grade) for pk, candidate, grade in Judgment.objects.filter(
        collection=collection, annotator__isnull=True, source=source).values_list("pk", "candidate_id", "grade")}
    new, changed, revisions = [], [], []
    for candidate, grade in grades.items():
        grade = int(grade)
        if candidate not in existing:
            new.append(Judgment(collection=collection, candidate_id=candidate, source=source, grade=grade))
            continue
        pk, old = existing[candidate]
        if old != grade:
            changed.append(Judgment(pk=pk, grade=grade))
            revisions.append(JudgmentRevision(judgment_id=pk, changed_by_source=source, old_grade=old, new_grade=grade,
                                              reason=reason))
    with transaction.atomic():  # all of the source's new grades and revisions, or none
        Judgment.objects.bulk_create(new, batch_size=1000)
        Judgment.objects.bulk_update(changed, ["grade"], batch_size=1000)
        JudgmentRevision.objects.bulk_create(revisions, batch_size=1000)
    return len(new), len(changed)


def write_ranking(*, collection: Collection, source: str, entries: Mapping[int, dict]) -> int:
    """Keep a derived source's ranking in its candidates' `sources` ({candidate pk: {"rank",
    "score", ...}}, replacing that source's previous entry), then recompute the judging order,
    which reads every ranked list. Under the query locks, as mining merges into `sources`, so
    neither write is lost. Returns how many candidates changed."""
    from .judging.priorities import mark_stale, refresh_all

    changed = []
    with transaction.atomic():
        query_ids = set(Candidate.objects.filter(pk__in=list(entries)).values_list("query_id", flat=True))
        Query.objects.lock(query_ids)
        for candidate in Candidate.objects.filter(pk__in=list(entries)).only("pk", "query_id", "sources"):
            if (candidate.sources or {}).get(source) != entries[candidate.pk]:
                candidate.sources = {**(candidate.sources or {}), source: entries[candidate.pk]}
                changed.append(candidate)
        Candidate.objects.bulk_update(changed, ["sources"], batch_size=500)
        mark_stale(query_ids={candidate.query_id for candidate in changed})
    refresh_all(collection)
    return len(changed)
