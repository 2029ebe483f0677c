"""The aggregation of one pair's judgments: labels by each method, and the weight's properties."""
from __future__ import annotations

import math
import random

import pytest

from annotate.export.aggregation import AggregationOptions, aggregate


def weight(grades, reliabilities=None, **options):
    reliabilities = reliabilities or [1.0] * len(grades)
    return aggregate(list(zip(grades, reliabilities)), options=AggregationOptions(**options)).weight


def test_more_agreeing_judges_give_a_higher_weight():
    weights = [weight([2] * n) for n in range(1, 7)]
    assert weights == sorted(weights) and len(set(weights)) == len(weights)
    assert weights[0] == pytest.approx(1 - math.exp(-1), abs=1e-6)


def test_an_outlier_from_an_unreliable_annotator_lowers_the_weight_less_than_one_from_a_reliable_one():
    agreeing = weight([2, 2, 2])
    unreliable_outlier = weight([2, 2, 2, 0], [1.0, 1.0, 1.0, 0.2])
    reliable_outlier = weight([2, 2, 2, 0], [1.0, 1.0, 1.0, 1.0])
    assert reliable_outlier < unreliable_outlier < agreeing


def test_disagreement_lowers_the_weight_and_further_apart_lowers_it_more():
    assert weight([2, 2, 3]) < weight([2, 2, 2])
    assert weight([2, 2, 0]) < weight([2, 2, 1])


def test_the_weight_stays_within_0_and_1_on_random_judgments():
    rng = random.Random(5)
    for _ in range(2000):
        n = rng.randint(1, 8)
        grades = [rng.randint(0, 3) for _ in range(n)]
        reliabilities = [rng.choice([0.0, rng.random(), 1.0]) for _ in range(n)]
        method = rng.choice(["median", "mean", "majority"])
        result = aggregate(list(zip(grades, reliabilities)), options=AggregationOptions(method=method, tau=rng.uniform(0.1, 5)))
        assert 0.0 <= result.weight <= 1.0
        assert 0 <= result.label <= 3 and 0.0 <= result.soft_label <= 1.0
        assert min(grades) <= result.label <= max(grades)


def test_annotators_of_zero_reliability_still_give_a_label_but_no_confidence():
    result = aggregate([(3, 0.0), (3, 0.0)])
    assert (result.label, result.weight) == (3, 0.0)


def test_an_adjudicated_grade_wins_with_weight_1():
    result = aggregate([(0, 1.0), (0, 1.0), (1, 1.0)], [0], adjudicated=3)
    assert (result.label, result.soft_label, result.weight, result.n_judgments, result.adjudicated) == (3, 1.0, 1.0, 3, True)


@pytest.mark.parametrize("method, grades, reliabilities, label", [
    ("median", [0, 1, 3], [1, 1, 1], 1),
    ("median", [1, 2], [1, 1], 1),           # the lower median
    ("median", [0, 3, 3], [1, 0.4, 0.4], 0),  # one reliable judge outweighs two doubtful ones
    ("mean", [1, 2], [1, 1], 2),             # 1.5 rounds half up
    ("mean", [0, 0, 3], [1, 1, 1], 1),
    ("majority", [1, 1, 3], [1, 1, 1], 1),
    ("majority", [1, 3], [1, 1], 1),         # a tie goes to the lower grade
    ("majority", [1, 1, 3], [0.3, 0.3, 1], 3),
])
def test_label_methods(method, grades, reliabilities, label):
    result = aggregate(list(zip(grades, reliabilities)), options=AggregationOptions(method=method))
    assert result.label == label


def test_soft_label_is_the_reliability_weighted_mean_scaled_to_0_1():
    result = aggregate([(3, 1.0), (0, 0.5)])
    assert result.soft_label == pytest.approx((3 * 1.0) / 1.5 / 3, abs=1e-6)


def test_prior_labels_count_only_without_human_grades_by_default():
    assert aggregate([], [3]).label == 3
    assert aggregate([], [3]).n_judgments == 1
    assert aggregate([(1, 1.0)], [3]).label == 1
    assert aggregate([], [3], options=AggregationOptions(priors="never")) is None
    always = aggregate([(1, 1.0), (1, 1.0)], [3, 3, 3], options=AggregationOptions(priors="always"))
    assert always.label == 3 and always.n_judgments == 5
    assert aggregate([], [2], options=AggregationOptions(prior_reliability=0.5)).weight == pytest.approx(1 - math.exp(-0.5), abs=1e-6)


def test_skips_only_pairs_have_no_label_and_adjudicated_only_needs_an_adjudication():
    assert aggregate([]) is None
    assert aggregate([(2, 1.0)], options=AggregationOptions(method="adjudicated")) is None
    assert aggregate([(2, 1.0)], adjudicated=1, options=AggregationOptions(method="adjudicated")).label == 1
