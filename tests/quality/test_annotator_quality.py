"""Per-annotator figures on hand-made data: consensus, gold with partial credit, time, skips, drift, flags."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from annotate.agreement.annotators import (
    JudgmentTable,
    annotator_quality,
    leave_one_out_consensus,
)
from annotate.quality.thresholds import QualityThresholds


def table(rows, *, gold=None, seconds=None) -> JudgmentTable:
    """rows: (item, annotator, grade or -1 for a skip), in the order given."""
    item, annotator, grade = (np.array(column, dtype=np.int64) for column in zip(*rows))
    n = len(rows)
    return JudgmentTable(
        item=item, annotator=annotator, grade=grade,
        seconds=np.full(n, np.nan) if seconds is None else np.asarray(seconds, dtype=float),
        gold=np.full(n, -1) if gold is None else np.asarray(gold, dtype=np.int64),
        annotator_ids=np.arange(annotator.max() + 1), n_items=int(item.max()) + 1,
    )


def test_consensus_leaves_the_annotators_own_grade_out():
    #          item 0: grades 0, 3, 3, 3     item 1: grades 0, 1, 3 (two others: mean of the middle two)
    item = np.array([0, 0, 0, 0, 1, 1, 1])
    grade = np.array([0, 3, 3, 3, 0, 1, 3])
    consensus, others = leave_one_out_consensus(item, grade, 2)
    assert consensus.tolist() == [3, 3, 3, 3, 2.0, 1.5, 0.5]
    assert others.tolist() == [3, 3, 3, 3, 2, 2, 2]


def test_consensus_kappa_is_cohens_quadratic_kappa_against_the_others_median():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 4, 300)
    rows = []
    for a in range(5):  # 4 judges per item: 3 others, so every consensus is a whole grade
        for i in range(300):
            if (i + a) % 5 != 0:
                g = truth[i] if rng.random() > 0.3 else rng.integers(0, 4)
                rows.append((i, a, int(g)))
    data = table(rows)
    result = annotator_quality(data)
    consensus, _ = leave_one_out_consensus(data.item, data.grade, data.n_items)
    for a, quality in enumerate(result):
        mine = data.annotator == a
        expected = cohen_kappa_score(data.grade[mine], consensus[mine].astype(int), labels=[0, 1, 2, 3],
                                     weights="quadratic")
        assert quality.consensus_kappa == pytest.approx(expected, abs=1e-12)
        assert quality.consensus_items == mine.sum()


def test_an_unreliable_annotator_is_flagged_and_trusted_less():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 200)
    rows = []
    for a in range(4):
        careful = np.where(rng.random(200) < 0.1, np.clip(truth + rng.choice([-1, 1], 200), 0, 3), truth)
        rows += [(i, a, int(g)) for i, g in enumerate(careful)]
    rows += [(i, 4, int(g)) for i, g in enumerate(rng.integers(0, 4, 200))]  # grades at random
    result = annotator_quality(table(rows))
    careless = result[4]
    assert "low_consensus" in careless.flags
    assert careless.consensus_kappa < 0.2
    assert careless.reliability < 0.2 and careless.reliability_basis == ["consensus"]
    for careful in result[:4]:
        assert careful.flags == []
        assert careful.consensus_kappa > 0.8
        assert careful.reliability > careless.reliability + 0.6


def test_gold_accuracy_gives_half_credit_off_by_one_and_is_configurable():
    # annotator 0 on four gold items (gold 2): exact, off by one, off by two, off by one
    rows = [(0, 0, 2), (1, 0, 3), (2, 0, 0), (3, 0, 1), (4, 0, 2)]
    gold = [2, 2, 2, 2, -1]  # item 4 is not gold
    default = annotator_quality(table(rows, gold=gold))[0]
    assert default.gold_items == 4
    assert default.gold_accuracy == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    strict = annotator_quality(table(rows, gold=gold), QualityThresholds(gold_credit=(1, 0, 0, 0)))[0]
    assert strict.gold_accuracy == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="gold_credit"):
        QualityThresholds(gold_credit=(1, 0.5))


def test_gold_accuracy_below_threshold_flags_and_enters_the_reliability():
    rows = [(i, 0, 0) for i in range(10)]
    result = annotator_quality(table(rows, gold=[3] * 10), QualityThresholds(min_gold=5))[0]
    assert result.gold_accuracy == 0.0
    assert result.flags == ["low_gold"]
    assert result.reliability == 0.0 and result.reliability_basis == ["gold"]


def test_median_seconds_skips_and_drift():
    # annotator 0: 60 grades, all 0 in the first half and all 3 in the second; 1 s each; 30 skips
    rows = [(i, 0, 0 if i < 30 else 3) for i in range(60)] + [(60 + i, 0, -1) for i in range(30)]
    seconds = [1.0] * 90
    thresholds = QualityThresholds(min_drift_grades=25)
    result = annotator_quality(table(rows, seconds=seconds), thresholds)[0]
    assert result.median_seconds == 1.0
    assert result.n_skips == 30 and result.skip_share == pytest.approx(1 / 3)
    assert result.drift == pytest.approx(1.0)
    assert result.grade_counts == [30, 0, 0, 30]
    assert set(result.flags) == {"too_fast", "many_skips", "drift"}
    # nothing to compare it with: no consensus, no gold -> trusted fully, by the documented rule
    assert result.reliability == 1.0 and result.reliability_basis == []


def test_median_per_annotator_with_even_counts_and_missing_times():
    rows = [(i, 0, 1) for i in range(4)] + [(i, 1, 1) for i in range(3)]
    seconds = [4, 1, 3, 2, np.nan, 10, 20]
    result = annotator_quality(table(rows, seconds=seconds))
    assert result[0].median_seconds == 2.5
    assert result[1].median_seconds == 15.0


def test_thresholds_come_from_settings(settings):
    settings.QUALITY_THRESHOLDS = {"min_consensus_kappa": 0.6, "gold_credit": [1, 0.25, 0, 0]}
    thresholds = QualityThresholds.from_settings()
    assert thresholds.min_consensus_kappa == 0.6 and thresholds.gold_credit == (1, 0.25, 0, 0)
    settings.QUALITY_THRESHOLDS = {"min_kappa": 0.6}
    with pytest.raises(ValueError, match="unknown key 'min_kappa'"):
        QualityThresholds.from_settings()
