"""Per-annotator quality: how each person agrees with the others, scores on gold, works and drifts.

Input is a JudgmentTable: one row per person's judgment (graded or skipped) as parallel numpy
arrays, in the order the judgments were made. Everything below is vectorised over judgments
(bincounts, one lexsort); no Python loop over items or judgments.

Figures per annotator (None where there is nothing to compute them from):

- `consensus_kappa`: agreement with the leave-one-out consensus of the others. For each item the
  annotator graded, the consensus is the median of the *other* annotators' grades on it (the mean
  of the two middle grades when they are even in number); the figure is the quadratic-weighted
  kappa of the annotator's grades against those consensus grades,
      kappa = 1 - mean((g - c)^2) / (var(g) + var(c) + (mean(g) - mean(c))^2),
  which is Cohen's quadratic kappa (sklearn's `cohen_kappa_score(..., weights="quadratic")`) when
  the consensus grades are whole numbers. Items nobody else graded do not count.
- `gold_accuracy`: mean credit on gold candidates, credit[|grade - gold grade|]; by default
  (1, 0.5, 0, 0): exact = 1, off by one = half, further = 0.
- `median_seconds`: median time spent per judgment (graded or skipped) that has a time.
- `grade_counts` / `grade_share`: the grade distribution.
- `drift`: total variation distance 0.5 * sum_g |p1(g) - p2(g)| between the grade distributions
  of the first and the second half of the annotator's grades (in the order given). Two samples of
  the same distribution differ by chance too (about 0.14 for 50 grades a half spread over 0..3),
  so it is computed only from `min_drift_grades` grades per half.
- `skip_share`: skips / judgments.

Flags (QualityThresholds; annotate/quality/thresholds.py reads overrides from the QUALITY_THRESHOLDS
setting): a figure is judged only
when it rests on enough data (`min_items` consensus items / timed judgments / judgments,
`min_gold` gold grades, `min_drift_grades` per half):

    low_consensus   consensus_kappa < min_consensus_kappa   (0.4)
    low_gold        gold_accuracy   < min_gold_accuracy     (0.7)
    too_fast        median_seconds  < min_median_seconds    (2.0)
    drift           drift           > max_drift             (0.25)
    many_skips      skip_share      > max_skip_share        (0.2)

Reliability in [0, 1] (what the export weights a person's grades by): the mean of the evidence
components available,
    max(0, consensus_kappa)  when it rests on >= min_items items,
    gold_accuracy            when it rests on >= min_gold gold grades,
and 1.0 when neither is available (no evidence against the annotator; `reliability_basis` says
which components were used). Speed, skips and drift raise flags for a person to look at but do not
change the reliability: they say how someone works, not whether their grades are right.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
from django.utils.translation import gettext_lazy as _

from ..grades import GRADES

N_GRADES = len(GRADES)  # grades are 0..N_GRADES-1, so a grade is its own column index


@dataclass(frozen=True)
class QualityThresholds:
    """When a figure raises a flag, and how much data it must rest on first (see the module docstring)."""

    min_consensus_kappa: float = 0.4
    min_gold_accuracy: float = 0.7
    min_median_seconds: float = 2.0
    max_drift: float = 0.25
    max_skip_share: float = 0.2
    min_items: int = 20
    min_gold: int = 5
    min_drift_grades: int = 50
    gold_credit: tuple[float, ...] = (1.0, 0.5, 0.0, 0.0)

    def __post_init__(self):
        if len(self.gold_credit) != N_GRADES or not all(0.0 <= c <= 1.0 for c in self.gold_credit):
            raise ValueError(f"gold_credit needs {N_GRADES} credits in 0..1 (by distance 0..{N_GRADES - 1}), got {self.gold_credit}")

    def as_json(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


@dataclass(frozen=True)
class JudgmentTable:
    """People's judgments, one row each, in the order they were made.

    item: candidate codes; annotator: annotator codes (0..n-1, labels in `annotator_ids`);
    grade: 0..3, or -1 for a skip; seconds: NaN where unknown; query: query code of the item;
    gold: the item's gold grade, -1 where it is not gold.
    """

    item: np.ndarray
    annotator: np.ndarray
    grade: np.ndarray
    seconds: np.ndarray
    gold: np.ndarray
    annotator_ids: np.ndarray
    n_items: int

    @property
    def n_annotators(self) -> int:
        return len(self.annotator_ids)


@dataclass
class AnnotatorQuality:
    annotator: object
    n_judgments: int
    n_grades: int
    n_skips: int
    skip_share: float | None
    consensus_kappa: float | None
    consensus_items: int
    consensus_mean_abs_diff: float | None
    gold_items: int
    gold_accuracy: float | None
    median_seconds: float | None
    grade_counts: list[int]
    grade_share: list[float] | None
    drift: float | None
    reliability: float
    reliability_basis: list[str]
    flags: list[str] = field(default_factory=list)


def leave_one_out_consensus(item: np.ndarray, grade: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """For each grade: the median of the other grades of its item, and how many others there are."""
    counts = np.bincount(item * N_GRADES + grade, minlength=n_items * N_GRADES).reshape(n_items, N_GRADES)
    others = counts[item]
    others[np.arange(len(grade)), grade] -= 1
    running = np.cumsum(others, axis=1)
    m = running[:, -1]
    low = np.argmax(running >= ((m + 1) // 2)[:, None], axis=1)
    high = np.argmax(running >= (m // 2 + 1)[:, None], axis=1)
    return (low + high) / 2.0, m


def _group_median(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of `values` within each group (NaN for an empty group), with one lexsort."""
    order = np.lexsort((values, group))
    group, values = group[order], values[order]
    sizes = np.bincount(group, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    result = np.full(n_groups, np.nan)
    present = sizes > 0
    low = starts[present] + (sizes[present] - 1) // 2
    high = starts[present] + sizes[present] // 2
    result[present] = (values[low] + values[high]) / 2.0
    return result


def _per(annotator: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    return np.bincount(annotator, weights=weights, minlength=n)


def consensus_kappas(table: JudgmentTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per annotator: quadratic kappa against the leave-one-out consensus, its item count, mean |g - c|."""
    n = table.n_annotators
    graded = table.grade >= 0
    item, grade, who = table.item[graded], table.grade[graded], table.annotator[graded]
    consensus, others = leave_one_out_consensus(item, grade, table.n_items)
    keep = others > 0
    g, c, who = grade[keep].astype(np.float64), consensus[keep], who[keep]
    count = _per(who, None, n).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_g, mean_c = _per(who, g, n) / count, _per(who, c, n) / count
        var_g = _per(who, g * g, n) / count - mean_g ** 2
        var_c = _per(who, c * c, n) / count - mean_c ** 2
        observed = _per(who, (g - c) ** 2, n) / count
        expected = var_g + var_c + (mean_g - mean_c) ** 2
        kappa = np.where(expected > 1e-12, 1.0 - observed / expected, np.nan)
        mean_abs = _per(who, np.abs(g - c), n) / count
    return kappa, count.astype(np.int64), mean_abs


def grade_drift(table: JudgmentTable, min_per_half: int) -> np.ndarray:
    """Per annotator: total variation between the grade shares of their first and second half."""
    n = table.n_annotators
    graded = table.grade >= 0
    who, grade = table.annotator[graded], table.grade[graded]
    order = np.argsort(who, kind="stable")  # keeps the order the grades were given within a person
    who, grade = who[order], grade[order]
    sizes = np.bincount(who, minlength=n)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    position = np.arange(len(who)) - starts[who]
    second = (2 * position >= sizes[who]).astype(np.int64)
    counts = np.bincount((who * 2 + second) * N_GRADES + grade, minlength=n * 2 * N_GRADES).reshape(n, 2, N_GRADES)
    halves = counts.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = counts / halves[:, :, None]
        tv = 0.5 * np.abs(shares[:, 0] - shares[:, 1]).sum(axis=1)
    return np.where(halves.min(axis=1) >= min_per_half, tv, np.nan)


def annotator_quality(table: JudgmentTable, thresholds: QualityThresholds = QualityThresholds()) -> list[AnnotatorQuality]:
    n = table.n_annotators
    graded = table.grade >= 0
    judgments = _per(table.annotator, None, n)
    skips = _per(table.annotator[~graded], None, n)
    grade_counts = np.bincount(table.annotator[graded] * N_GRADES + table.grade[graded],
                               minlength=n * N_GRADES).reshape(n, N_GRADES)
    kappa, consensus_items, mean_abs = consensus_kappas(table)

    on_gold = graded & (table.gold >= 0)
    credit = np.asarray(thresholds.gold_credit)[np.abs(table.grade[on_gold] - table.gold[on_gold])]
    gold_items = _per(table.annotator[on_gold], None, n)
    gold_credit = _per(table.annotator[on_gold], credit, n)

    timed = ~np.isnan(table.seconds)
    median_seconds = _group_median(table.annotator[timed], table.seconds[timed], n)
    timed_count = _per(table.annotator[timed], None, n)
    drift = grade_drift(table, thresholds.min_drift_grades)

    result = []
    for a in range(n):
        n_grades = int(grade_counts[a].sum())
        gold_accuracy = float(gold_credit[a] / gold_items[a]) if gold_items[a] else None
        quality = AnnotatorQuality(
            annotator=table.annotator_ids[a],
            n_judgments=int(judgments[a]),
            n_grades=n_grades,
            n_skips=int(skips[a]),
            skip_share=float(skips[a] / judgments[a]) if judgments[a] else None,
            consensus_kappa=_number(kappa[a]),
            consensus_items=int(consensus_items[a]),
            consensus_mean_abs_diff=_number(mean_abs[a]),
            gold_items=int(gold_items[a]),
            gold_accuracy=gold_accuracy,
            median_seconds=_number(median_seconds[a]),
            grade_counts=[int(c) for c in grade_counts[a]],
            grade_share=[float(c / n_grades) for c in grade_counts[a]] if n_grades else None,
            drift=_number(drift[a]),
            reliability=1.0,
            reliability_basis=[],
        )
        _judge(quality, thresholds, timed=int(timed_count[a]))
        result.append(quality)
    return result


def _judge(q: AnnotatorQuality, t: QualityThresholds, *, timed: int) -> None:
    """Set the flags and the reliability of one annotator (see the module docstring)."""
    components = []
    if q.consensus_kappa is not None and q.consensus_items >= t.min_items:
        components.append(("consensus", max(0.0, q.consensus_kappa)))
        if q.consensus_kappa < t.min_consensus_kappa:
            q.flags.append("low_consensus")
    if q.gold_accuracy is not None and q.gold_items >= t.min_gold:
        components.append(("gold", q.gold_accuracy))
        if q.gold_accuracy < t.min_gold_accuracy:
            q.flags.append("low_gold")
    if q.median_seconds is not None and timed >= t.min_items and q.median_seconds < t.min_median_seconds:
        q.flags.append("too_fast")
    if q.drift is not None and q.drift > t.max_drift:
        q.flags.append("drift")
    if q.skip_share is not None and q.n_judgments >= t.min_items and q.skip_share > t.max_skip_share:
        q.flags.append("many_skips")
    if components:
        q.reliability = float(min(1.0, max(0.0, sum(v for _, v in components) / len(components))))
        q.reliability_basis = [name for name, _ in components]


def _number(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


# What each flag means, for the quality page. Reports store the flag codes, so a report computed
# before (or in another language) reads in the viewer's language: lazy, worded when shown.
FLAG_TEXT = {
    "low_consensus": _("agrees little with the others' consensus"),
    "low_gold": _("low accuracy on gold items"),
    "too_fast": _("judges faster than anyone can read"),
    "drift": _("grade distribution drifted over time"),
    "many_skips": _("skips many candidates"),
}
