"""The false-negative lane, measured: how many of the pairs a mining guard would have dropped as
likely positives turned out relevant once people judged them.

Mining (mining/negatives.py) offers a seeded sample of what its guards drop beside the ordinary
negatives, tagged in Candidate.guard; annotators judge them blind (nothing in a task shows the
tag). A guard whose drops are mostly relevant is doing its job; one whose drops are mostly not
relevant throws away hard negatives, and its threshold should move.
"""
from __future__ import annotations

from django.db.models import Count, Q
from django.utils.translation import gettext

from ..models import Collection, Judgment

# A pair counts as relevant when more than half of the people who graded it gave 2 or 3.
RELEVANT_GRADE = 2


def false_negative_lane(collection: Collection) -> dict:
    """Per guard: candidates tagged, judged (at least one person's standing grade) and relevant
    (more than half of those grades >= RELEVANT_GRADE), with the relevant share of the judged;
    `all` sums the guards. One query, over the tagged candidates only."""
    tagged_counts = dict(
        collection.candidates.exclude(guard="").values("guard").annotate(n=Count("pk")).values_list("guard", "n")
    )
    votes = (
        Judgment.objects.people_grades().filter(collection=collection).exclude(candidate__guard="")
        .values("candidate_id", "candidate__guard")
        .annotate(graded=Count("pk"), relevant=Count("pk", filter=Q(grade__gte=RELEVANT_GRADE)))
    )
    judged: dict[str, int] = {}
    relevant: dict[str, int] = {}
    for row in votes:
        guard = row["candidate__guard"]
        judged[guard] = judged.get(guard, 0) + 1
        relevant[guard] = relevant.get(guard, 0) + (2 * row["relevant"] > row["graded"])
    guards = {guard: _figures(tagged_counts[guard], judged.get(guard, 0), relevant.get(guard, 0))
              for guard in sorted(tagged_counts)}
    total = _figures(sum(tagged_counts.values()), sum(judged.values()), sum(relevant.values()))
    return {"guards": guards, "all": total,
            "rule": gettext("relevant: more than half of the people's grades are %(grade)d or higher") % {
                "grade": RELEVANT_GRADE}}


def _figures(tagged: int, judged: int, relevant: int) -> dict:
    return {"tagged": tagged, "judged": judged, "relevant": relevant,
            "relevant_share": round(relevant / judged, 4) if judged else None}
