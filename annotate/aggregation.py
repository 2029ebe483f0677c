"""Aggregation: one query–document pair's judgments -> one training record.

`label` is the aggregated grade (0..3), `soft_label` the reliability-weighted mean grade scaled to
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

from .models import GRADE_MAX

METHODS = ("median", "mean", "majority", "adjudicated")
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
    grade set by staff, if any.
    """
    if adjudicated is not None:
        return Aggregate(adjudicated, round(adjudicated / GRADE_MAX, DIGITS), 1.0, len(human), True)
    if options.method == "adjudicated":
        return None
    judges = list(human)
    if priors and (options.priors == "always" or (options.priors == "fallback" and not judges)):
        judges += [(grade, options.prior_reliability) for grade in priors]
    if not judges:
        return None
    total = 0.0
    for _, reliability in judges:
        total += reliability
    # All-unreliable judges still say which grade they gave: count them equally for the label,
    # but they give no confidence (evidence 0 -> weight 0).
    weighted = judges if total > _EPS else [(grade, 1.0) for grade, _ in judges]
    mass = total if total > _EPS else float(len(judges))
    mean = sum(grade * r for grade, r in weighted) / mass
    label = _label(weighted, mass, mean, options.method)
    agreement = sum(r * (1.0 - abs(grade - label) / GRADE_MAX) for grade, r in weighted) / mass
    evidence = 1.0 - math.exp(-total / options.tau)
    weight = min(1.0, max(0.0, agreement * evidence))
    return Aggregate(label, round(mean / GRADE_MAX, DIGITS), round(weight, DIGITS), len(judges))


def _label(judges: list[tuple[int, float]], mass: float, mean: float, method: str) -> int:
    per_grade = [0.0] * (GRADE_MAX + 1)
    for grade, reliability in judges:
        per_grade[grade] += reliability
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
