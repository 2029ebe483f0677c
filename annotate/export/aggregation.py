"""Aggregation: one query–document pair's judgments -> one training record (the export's labels).

`label` is the aggregated grade (0..3, annotate/grades.py), `soft_label` the reliability-weighted mean grade scaled to
[0, 1] (for distillation), `weight` the confidence in the label (README, "Weights"):

    agreement = sum_j r_j * (1 - |g_j - label| / 3) / sum_j r_j
    evidence  = 1 - exp(-sum_j r_j / tau)
    weight    = agreement * evidence

over the grades g_j that count, each with its annotator's reliability r_j in [0, 1]. An adjudicated
grade wins: label = that grade, weight = 1. Skips and withdrawn judgments are not grades (the
caller never passes them).

Prior labels (imported qrels / labelled files: judgments with a source, no annotator) are judges
of their own with reliability `prior_reliability`. By default (`priors="fallback"`) they count only
when a pair has no human grade — a person's grade supersedes the import — with "always" they are
one more judge beside the people, with "never" they are ignored.

Methods for the label: "median" (default; the lower reliability-weighted median: the smallest grade
whose cumulative weight reaches half the total), "mean" (the weighted mean rounded half up),
"majority" (the grade with the largest total weight; a tie goes to the lower grade) and
"adjudicated" (only adjudicated pairs get a label).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..grades import GRADE_MAX, GRADES

MODEL = "model"  # the annotator model (annotate/quality/annotator_model.py); the others are computed here
METHODS = (MODEL, "median", "mean", "majority", "adjudicated")
PRIOR_MODES = ("fallback", "always", "never")
DEFAULT_TAU = 1.0
DIGITS = 6  # rounding of soft_label and weight: files stay byte-stable and readable
_EPS = 1e-12


@dataclass(frozen=True)
class AggregationOptions:
    method: str = "median"
    priors: str = "fallback"
    prior_reliability: float = 1.0
    tau: float = DEFAULT_TAU


@dataclass(frozen=True, slots=True)
class Aggregate:
    label: int
    soft_label: float
    weight: float
    n_judgments: int  # the grades the label was computed from (people's, or the priors used)
    adjudicated: bool = False


def aggregate(human: Sequence[tuple[int, float]], priors: Sequence[int] = (), *, adjudicated: int | None = None,
              options: AggregationOptions = AggregationOptions()) -> Aggregate | None:
    """The pair's aggregate, or None when nothing gives it a label.

    human: (grade, reliability) per person's grade; priors: imported grades; adjudicated: the final
    grade set by staff, if any. (On the export's hot path: one pass over the judges into per-grade
    totals, everything else from those totals.)
    """
    if adjudicated is not None:
        return Aggregate(adjudicated, round(adjudicated / GRADE_MAX, DIGITS), 1.0, len(human), True)
    if options.method == "adjudicated":
        return None
    # Indexed by grade: the scale starts at 0.
    per_grade = [0.0] * len(GRADES)
    count = [0] * len(GRADES)
    for grade, reliability in human:
        per_grade[grade] += reliability
        count[grade] += 1
    if priors and (options.priors == "always" or (options.priors == "fallback" and not human)):
        for grade in priors:
            per_grade[grade] += options.prior_reliability
            count[grade] += 1
    n = sum(count)
    if not n:
        return None
    # sum() adds left to right from 0, as the written-out sum did: the same float, the same file.
    total = sum(per_grade)
    mass = total
    # All-unreliable judges still say which grade they gave: count them equally for the label,
    # but they give no confidence (evidence 0 -> weight 0).
    if total <= _EPS:
        per_grade = [float(c) for c in count]
        mass = float(n)
    mean = sum(grade * weight for grade, weight in zip(GRADES, per_grade)) / mass
    label = _label(per_grade, mass, mean, options.method)
    disagreement = 0.0
    for grade in GRADES:
        if grade != label:
            disagreement += per_grade[grade] * abs(grade - label)
    agreement = 1.0 - disagreement / (GRADE_MAX * mass)
    evidence = 1.0 - math.exp(-total / options.tau)
    weight = min(1.0, max(0.0, agreement * evidence))
    return Aggregate(label, round(mean / GRADE_MAX, DIGITS), round(weight, DIGITS), n)


def _label(per_grade: list[float], mass: float, mean: float, method: str) -> int:
    if method == "mean":
        return min(GRADE_MAX, math.floor(mean + 0.5))
    if method == "majority":
        best = max(per_grade)
        return next(g for g, w in enumerate(per_grade) if w >= best - _EPS)
    cumulative = 0.0
    for grade, w in enumerate(per_grade):
        cumulative += w
        if cumulative >= mass / 2 - _EPS:
            return grade
    return GRADE_MAX
