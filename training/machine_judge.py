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

What the calibration reads: the score, and beside it how much of the query the document meets
(training.judge_features: token coverage, missing rare terms, the longest shared phrase, in the
collection's analyser). With enough grades (MIN_TEXT_CALIBRATION_GRADES on at least
MIN_TEXT_CALIBRATION_QUERIES queries) both calibrations are fitted on folds of the train queries
(GroupKFold by query) and the one with the lower held-out log loss is kept; the result names it.
A gradient-boosted classifier (sklearn's HistGradientBoostingClassifier) turns score and text
into P(0..3). Measured on kuake-qtr (bench/machine_judge.py: the grades of the 4,018 queries a
bi-encoder was fine-tuned on calibrate, 955 queries it never saw are judged; README): Cohen's kappa
with the reference grades 0.228 from its score alone, 0.309 from score and text (the base model
zero-shot: 0.104 and 0.272); as the studio splits queries (every train-split query calibrating,
1,386 others judged), 0.262 and 0.368 (zero-shot 0.097 and 0.344).
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
# Below these the text calibration is not tried: a classifier over 15 inputs needs a few hundred
# grades, and folds by query need queries. (On kuake-qtr 300 queries' grades, about 1,000, are
# already enough for it to beat the score's calibration on held-out log loss: 1.19 vs 1.37.)
MIN_TEXT_CALIBRATION_GRADES = 200
MIN_TEXT_CALIBRATION_QUERIES = 10  # two a fold
CALIBRATION_FOLDS = 5
SCORE_BATCH_QUERIES = 64
SCORE_ONLY, SCORE_AND_TEXT = "score", "score+text"


@dataclass(frozen=True)
class OrdinalCalibration:
    """P(grade | score) from monotone curves of P(grade >= g | score), g = 1..K-1."""

    curves: tuple  # fitted sklearn IsotonicRegression per threshold (None: the grade never reached)
    base_rates: np.ndarray  # P(grade >= g) over the calibration set, for a threshold with no curve

    kind = SCORE_ONLY

    def probabilities(self, scores, features=None) -> np.ndarray:
        """P(0..3) of each score (`features` are not read: the score alone decides)."""
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


@dataclass(frozen=True)
class TextCalibration:
    """P(grade | score, text features): a gradient-boosted classifier over both."""

    classifier: object  # a fitted sklearn HistGradientBoostingClassifier
    n_grades: int = len(GRADES)
    kind = SCORE_AND_TEXT

    def probabilities(self, scores, features) -> np.ndarray:
        probs = np.zeros((len(scores), self.n_grades))
        # a grade nobody gave has no column of the classifier's: it keeps probability 0
        probs[:, self.classifier.classes_] = self.classifier.predict_proba(_inputs(scores, features))
        return probs


def fit_text_calibration(scores, features, grades, *, n_grades: int = len(GRADES)) -> TextCalibration:
    from sklearn.ensemble import HistGradientBoostingClassifier

    grades = np.asarray(grades, dtype=int)
    # Small trees, shrinkage and early stopping on a held-out tenth: with sklearn's defaults the
    # classifier overfits a few hundred queries' grades into confident probabilities (kuake-qtr,
    # 300 calibration queries: held-out log loss 2.04, worse than the flat score calibration's 1.37);
    # with these 1.19, and kappa on 150 other queries 0.28 instead of 0.21.
    # The early-stopping tenth is drawn stratified, which needs two of every grade given; where a
    # grade was given once (a fold of a small set), a fixed 100 rounds instead: fit_calibration's
    # held-out comparison still decides whether this calibration is used at all.
    counts = np.bincount(grades)
    stops_early = bool((counts[counts > 0] >= 2).all())
    classifier = HistGradientBoostingClassifier(
        learning_rate=0.05, max_iter=300 if stops_early else 100, max_leaf_nodes=8, min_samples_leaf=40,
        l2_regularization=1.0, early_stopping=stops_early, random_state=0)  # random_state: the split is drawn
    return TextCalibration(classifier=classifier.fit(_inputs(scores, features), grades), n_grades=n_grades)


@dataclass(frozen=True)
class CalibrationChoice:
    calibration: object  # OrdinalCalibration or TextCalibration
    held_out_log_loss: dict  # kind -> mean log loss on held-out calibration queries (empty: not compared)
    reason: str = ""


def too_few_for_text(n_grades: int, n_queries: int) -> str:
    """Why the text calibration is not tried on this many grades and queries ("" : it is)."""
    if n_grades < MIN_TEXT_CALIBRATION_GRADES or n_queries < MIN_TEXT_CALIBRATION_QUERIES:
        return (f"{n_grades} grades on {n_queries} queries: the text calibration needs "
                f"{MIN_TEXT_CALIBRATION_GRADES} grades on {MIN_TEXT_CALIBRATION_QUERIES} queries")
    return ""


def fit_calibration(scores, features, grades, queries, *, n_grades: int = len(GRADES)) -> CalibrationChoice:
    """The score's ordinal calibration, or the score-and-text one where it predicts people's grades
    better on calibration queries it was not fitted on (GroupKFold by query, log loss). `features`
    are not read (and may be None) where too_few_for_text refuses the text."""
    from sklearn.model_selection import GroupKFold

    scores, grades, queries = np.asarray(scores, dtype=float), np.asarray(grades, dtype=int), np.asarray(queries)
    score_only = fit_ordinal_calibration(scores, grades, n_grades=n_grades)
    refusal = too_few_for_text(len(grades), len(set(queries.tolist())))
    if refusal:
        return CalibrationChoice(score_only, {}, reason=refusal)
    features = np.asarray(features, dtype=float).reshape(len(scores), -1)
    folds = list(GroupKFold(n_splits=CALIBRATION_FOLDS).split(scores, grades, queries))
    if any(np.unique(grades[fit]).size < 2 for fit, _ in folds):
        return CalibrationChoice(score_only, {}, reason="people gave one grade only: nothing for the text to tell apart")
    held_out = {SCORE_ONLY: np.zeros((len(grades), n_grades)), SCORE_AND_TEXT: np.zeros((len(grades), n_grades))}
    for fit, rest in folds:
        held_out[SCORE_ONLY][rest] = fit_ordinal_calibration(scores[fit], grades[fit], n_grades=n_grades).probabilities(
            scores[rest])
        held_out[SCORE_AND_TEXT][rest] = fit_text_calibration(
            scores[fit], features[fit], grades[fit], n_grades=n_grades).probabilities(scores[rest], features[rest])
    losses = {kind: _log_loss(probs, grades) for kind, probs in held_out.items()}
    if losses[SCORE_AND_TEXT] < losses[SCORE_ONLY]:
        return CalibrationChoice(fit_text_calibration(scores, features, grades, n_grades=n_grades), losses)
    return CalibrationChoice(score_only, losses)


def _inputs(scores, features) -> np.ndarray:
    return np.column_stack([np.asarray(scores, dtype=float), np.asarray(features, dtype=float).reshape(len(scores), -1)])


def _log_loss(probs: np.ndarray, grades: np.ndarray) -> float:
    # floored: an isotonic curve gives exact zeros, and one surprise must not cost infinity
    return float(-np.log(np.clip(probs[np.arange(len(grades)), grades], 1e-6, 1.0)).mean())


@dataclass
class MachineJudgement:
    model: str
    scored: int = 0
    calibration_grades: int = 0
    calibration: str = ""  # SCORE_ONLY or SCORE_AND_TEXT: what the grades were calibrated from
    held_out_log_loss: dict = field(default_factory=dict)  # each calibration's, on held-out calibration queries
    calibration_reason: str = ""  # why the text was not tried, where it was not
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
    query_of = {r[0]: r[1] for r in rows}
    train_queries = [query_of[pk] for pk, _ in train_pairs]
    # the text features cost a tokenisation of every candidate: only where the text may be used
    features = None if too_few_for_text(len(train_pairs), len(set(train_queries))) else _text_features(
        rows, method=collection.tokenizer)
    choice = fit_calibration([scores[pk] for pk, _ in train_pairs], _of(features, (pk for pk, _ in train_pairs)),
                             [g for _, g in train_pairs], train_queries)
    result.calibration, result.calibration_reason = choice.calibration.kind, choice.reason
    result.held_out_log_loss = {kind: round(loss, 4) for kind, loss in choice.held_out_log_loss.items()}
    pks = [r[0] for r in rows]
    probs = choice.calibration.probabilities([scores[pk] for pk in pks], _of(features, pks))
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


def _text_features(rows, *, method: str) -> dict[int, list[float]]:
    """{candidate pk: training.judge_features of its pair}, document frequencies over the judged documents."""
    from .judge_features import TextFeatures

    documents = dict.fromkeys(_document_text(title, text) for *_, title, text in rows)  # each once, in order
    text_features = TextFeatures(documents, method=method)
    return {pk: text_features.of(query, _document_text(title, text)) for pk, _q, query, _s, title, text in rows}


def _of(features: dict | None, pks) -> list | None:
    return None if features is None else [features[pk] for pk in pks]


def _document_text(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


def _people_grades(collection) -> list[tuple[int, int]]:
    return list(Judgment.objects.people_grades().filter(collection=collection).values_list("candidate_id", "grade"))


def _scores(ranker, rows) -> dict[int, float]:
    """{candidate pk: score}, scored a batch of queries at a time."""
    by_query: dict[int, list] = {}
    for pk, query_id, query, _split, title, text in rows:
        by_query.setdefault(query_id, [query, [], []])
        by_query[query_id][1].append(pk)
        by_query[query_id][2].append(_document_text(title, text))
    lists = list(by_query.values())
    scores: dict[int, float] = {}
    for start in range(0, len(lists), SCORE_BATCH_QUERIES):
        batch = lists[start:start + SCORE_BATCH_QUERIES]
        for (_query, pks, _docs), values in zip(batch, ranker.score_lists([(q, docs) for q, _, docs in batch])):
            scores.update(zip(pks, np.asarray(values, dtype=float).tolist()))
    return scores
