"""The machine judge: the served model's scores, calibrated to people's grades, as one more judge.

After each promotion (and on demand before any, with the base model), the model scores every
candidate of the collection. An ordinal calibration maps a score to the four grade probabilities:
for each threshold g = 1, 2, 3 an isotonic regression (sklearn) of "people graded it >= g" on the
score, fitted on the *train* queries' people's grades only (a dev query's grades stay out, so the
judge is not fitted on what measures it), the three curves made nested (P(>= 3) <= P(>= 2) <=
P(>= 1)) and differenced into P(0..3). The most probable grade of each pair is written as a
judgment of the source "machine" (annotate.sources), so the annotator model gives it a confusion of
its own against the people and it weighs as much as it agrees with them. It is never shown to
annotators (a source, not a person's grade: the judging page shows only the annotator's own), so it
cannot anchor them.

A cross-encoder's scores are comparable across queries (one head, one scale); a bi-encoder's
cosines and a fusion's mixed z-scores less so, which the calibration absorbs as well as a
monotone map can. Fewer than MIN_CALIBRATION_GRADES people's grades on train queries: no judge
(nothing to calibrate against), and the result says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from annotate.grades import GRADES
from annotate.models import MACHINE_SOURCE, Candidate, Judgment
from annotate.sources import write_ranking, write_source_grades

from .rankers import load_ranker

MIN_CALIBRATION_GRADES = 30
SCORE_BATCH_QUERIES = 64


@dataclass(frozen=True)
class OrdinalCalibration:
    """P(grade | score) from monotone curves of P(grade >= g | score), g = 1..K-1."""

    curves: tuple  # fitted sklearn IsotonicRegression per threshold (None: the grade never reached)
    base_rates: np.ndarray  # P(grade >= g) over the calibration set, for a threshold with no curve

    def probabilities(self, scores) -> np.ndarray:
        scores = np.asarray(scores, dtype=float)
        at_least = np.column_stack([curve.predict(scores) if curve is not None else np.full(scores.size, rate)
                                    for curve, rate in zip(self.curves, self.base_rates)])
        at_least = np.minimum.accumulate(np.clip(at_least, 0.0, 1.0), axis=1)  # nested: >=3 within >=2 within >=1
        upper = np.column_stack([np.ones(scores.size), at_least])
        lower = np.column_stack([at_least, np.zeros(scores.size)])
        return upper - lower


def fit_ordinal_calibration(scores, grades, *, n_grades: int = len(GRADES)) -> OrdinalCalibration:
    from sklearn.isotonic import IsotonicRegression

    scores, grades = np.asarray(scores, dtype=float), np.asarray(grades, dtype=int)
    curves, rates = [], []
    for g in range(1, n_grades):
        target = (grades >= g).astype(float)
        rates.append(float(target.mean()) if target.size else 0.0)
        if target.size == 0 or target.min() == target.max():
            curves.append(None)  # everyone above (or below) g: a constant, no curve to fit
            continue
        curves.append(IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
                      .fit(scores, target))
    return OrdinalCalibration(curves=tuple(curves), base_rates=np.asarray(rates))


@dataclass
class MachineJudgement:
    model: str
    scored: int = 0
    calibration_grades: int = 0
    added: int = 0
    changed: int = 0
    skipped_reason: str = ""
    grade_counts: list = field(default_factory=list)


def judge_collection(*, collection, model_dir: str | Path | None = None, max_length: int = 256) -> MachineJudgement:
    """Score, calibrate and write the machine judge's grades for every candidate of `collection`;
    `model_dir` defaults to the base model (the promoted one is passed by the task)."""
    model_dir = Path(model_dir or settings.BASE_MODEL_DIR)
    result = MachineJudgement(model=str(model_dir))
    rows = list(Candidate.objects.filter(collection=collection).order_by("query_id", "pk").values_list(
        "pk", "query_id", "query__text", "query__split", "document__title", "document__text"))
    if not rows:
        result.skipped_reason = "the collection has no candidates"
        return result
    on_train = {r[0] for r in rows if r[3] == "train"}
    train_pairs = [(pk, grade) for pk, grade in _people_grades(collection) if pk in on_train]
    result.calibration_grades = len(train_pairs)
    if len(train_pairs) < MIN_CALIBRATION_GRADES:
        result.skipped_reason = (f"{len(train_pairs)} people's grades on train queries; the calibration needs "
                                 f"at least {MIN_CALIBRATION_GRADES}")
        return result
    scores = _scores(load_ranker(model_dir, max_length=max_length), rows)
    result.scored = len(scores)
    calibration = fit_ordinal_calibration([scores[pk] for pk, _ in train_pairs], [g for _, g in train_pairs])
    pks = [r[0] for r in rows]
    probs = calibration.probabilities([scores[pk] for pk in pks])
    grades = probs.argmax(axis=1)
    _record_ranking(collection, rows, scores, dict(zip(pks, probs.tolist())))
    result.grade_counts = np.bincount(grades, minlength=len(GRADES)).tolist()
    result.added, result.changed = write_source_grades(
        collection=collection, source=MACHINE_SOURCE, grades=dict(zip(pks, grades.tolist())),
        reason=f"machine judge: {model_dir.name}")
    return result


def _record_ranking(collection, rows, scores: dict[int, float], probs: dict[int, list]) -> None:
    """The served model's ranking of each query's candidates, its scores and grade probabilities,
    kept with the candidates (annotate.sources.write_ranking: the judging order reads them)."""
    by_query: dict[int, list[int]] = {}
    for pk, query_id, *_ in rows:
        by_query.setdefault(query_id, []).append(pk)
    entries = {}
    for pks in by_query.values():
        for place, pk in enumerate(sorted(pks, key=lambda pk: (-scores[pk], pk)), start=1):
            entries[pk] = {"rank": place, "score": round(scores[pk], 6), "probs": [round(p, 6) for p in probs[pk]]}
    write_ranking(collection=collection, source=MACHINE_SOURCE, entries=entries)


def _people_grades(collection) -> list[tuple[int, int]]:
    return list(Judgment.objects.people_grades().filter(collection=collection).values_list("candidate_id", "grade"))


def _scores(ranker, rows) -> dict[int, float]:
    """{candidate pk: score}, scored a batch of queries at a time."""
    by_query: dict[int, list] = {}
    for pk, query_id, query, _split, title, text in rows:
        by_query.setdefault(query_id, [query, [], []])
        by_query[query_id][1].append(pk)
        by_query[query_id][2].append(f"{title}\n{text}" if title else text)
    lists = list(by_query.values())
    scores: dict[int, float] = {}
    for start in range(0, len(lists), SCORE_BATCH_QUERIES):
        batch = lists[start:start + SCORE_BATCH_QUERIES]
        for (_query, pks, _docs), values in zip(batch, ranker.score_lists([(q, docs) for q, _, docs in batch])):
            scores.update(zip(pks, np.asarray(values, dtype=float).tolist()))
    return scores
