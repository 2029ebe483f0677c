"""Equal to the reference implementations within 1e-9 on random data with missing grades:
`krippendorff.alpha` (test-only: GPL), sklearn's `cohen_kappa_score(labels=scale)` and
statsmodels' `fleiss_kappa`, over several seeds, shapes and scales."""
from __future__ import annotations

import itertools
import warnings

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from annotate.agreement import (
    Ratings,
    alpha_by_group,
    compute_agreement,
    krippendorff_alpha,
)

from .conftest import equal_judges_matrix, random_matrix

SHAPES = [  # annotators, items, share missing, scale
    (2, 30, 0.0, (0, 3)),
    (3, 50, 0.3, (0, 3)),
    (5, 200, 0.5, (0, 3)),
    (12, 120, 0.8, (0, 3)),
    (4, 80, 0.4, (1, 5)),
    (6, 60, 0.2, (0, 1)),
]
SEEDS = range(4)
CASES = [pytest.param(seed, *shape, id=f"seed{seed}-{shape[0]}x{shape[1]}-miss{shape[2]}-{shape[3][0]}to{shape[3][1]}")
         for seed, shape in itertools.product(SEEDS, SHAPES)]


@pytest.mark.parametrize("seed,annotators,items,missing,scale", CASES)
def test_alpha_equals_krippendorff_package_at_every_level(seed, annotators, items, missing, scale):
    matrix = random_matrix(seed, annotators=annotators, items=items, missing=missing, scale=scale)
    ratings = Ratings.from_matrix(matrix, scale=scale)
    domain = list(range(scale[0], scale[1] + 1))
    for level in ("nominal", "ordinal", "interval"):
        expected = krippendorff.alpha(matrix, level_of_measurement=level, value_domain=domain)
        assert krippendorff_alpha(ratings, level) == pytest.approx(expected, abs=1e-9), level


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_scale_values_nobody_used_count_as_krippendorff_counts_them_with_the_scale_as_value_domain(level):
    matrix = random_matrix(7, annotators=4, items=60, missing=0.3)
    matrix[matrix == 2] = 3  # grade 2 of 0..3 never occurs
    ratings = Ratings.from_matrix(matrix)
    expected = krippendorff.alpha(matrix, level_of_measurement=level, value_domain=[0, 1, 2, 3])
    assert krippendorff_alpha(ratings, level) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed,annotators,items,missing,scale", CASES)
def test_cohen_kappa_of_every_pair_equals_sklearn_with_labels_fixed_to_the_scale(seed, annotators, items, missing, scale):
    matrix = random_matrix(seed, annotators=annotators, items=items, missing=missing, scale=scale)
    result = compute_agreement(Ratings.from_matrix(matrix, scale=scale), bootstrap=0)
    labels = list(range(scale[0], scale[1] + 1))
    by_pair = {(pair.annotator_a, pair.annotator_b): pair for pair in result.pairs}
    expected_means = {"kappa": [], "kappa_linear": [], "kappa_quadratic": []}
    for a, b in itertools.combinations(range(annotators), 2):
        shared = ~np.isnan(matrix[a]) & ~np.isnan(matrix[b])
        if not shared.any():
            assert (a, b) not in by_pair
            continue
        pair = by_pair[(a, b)]
        assert pair.n_items == shared.sum()
        for field, weights in (("kappa", None), ("kappa_linear", "linear"), ("kappa_quadratic", "quadratic")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = cohen_kappa_score(matrix[a, shared], matrix[b, shared], labels=labels, weights=weights)
            if np.isnan(expected):
                assert getattr(pair, field) is None
            else:
                assert getattr(pair, field) == pytest.approx(expected, abs=1e-9)
                expected_means[field].append(expected)
    assert result.cohen_kappa_mean == pytest.approx(np.mean(expected_means["kappa"]), abs=1e-9)
    assert result.cohen_kappa_linear_mean == pytest.approx(np.mean(expected_means["kappa_linear"]), abs=1e-9)
    assert result.cohen_kappa_quadratic_mean == pytest.approx(np.mean(expected_means["kappa_quadratic"]), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("annotators,items,judges,scale", [(3, 40, 3, (0, 3)), (10, 150, 4, (0, 3)),
                                                         (20, 300, 2, (0, 3)), (7, 90, 5, (1, 5))])
def test_fleiss_kappa_equals_statsmodels_when_every_item_has_the_same_number_of_judges(seed, annotators, items, judges, scale):
    matrix = equal_judges_matrix(seed, annotators=annotators, items=items, judges=judges, scale=scale)
    result = compute_agreement(Ratings.from_matrix(matrix, scale=scale), bootstrap=0)
    grades_per_item = np.sort(matrix.T, axis=1)[:, :judges]  # the NaNs sort last
    table, _ = aggregate_raters(grades_per_item)
    assert result.fleiss_kappa == pytest.approx(statsmodels_fleiss(table, method="fleiss"), abs=1e-9)
    assert result.support["fleiss_kappa"].n_items == items
    assert result.support["fleiss_kappa"].n_judgments == items * judges


def test_fleiss_kappa_is_none_when_items_have_different_numbers_of_judges():
    matrix = random_matrix(1, annotators=4, items=50, missing=0.4)
    result = compute_agreement(Ratings.from_matrix(matrix), bootstrap=0)
    assert result.fleiss_kappa is None
    assert "different numbers of judges" in result.undefined["fleiss_kappa"]


@pytest.mark.parametrize("seed,annotators,items,missing,scale", CASES[:12])
def test_percent_and_within_one_agreement_count_every_pair_of_grades_on_an_item(seed, annotators, items, missing, scale):
    matrix = random_matrix(seed, annotators=annotators, items=items, missing=missing, scale=scale)
    result = compute_agreement(Ratings.from_matrix(matrix, scale=scale), bootstrap=0)
    equal = within_one = pairs = 0
    for column in matrix.T:
        grades = column[~np.isnan(column)]
        for x, y in itertools.combinations(grades, 2):
            pairs += 1
            equal += x == y
            within_one += abs(x - y) <= 1
    assert result.support["percent_agreement"].n_pairs == pairs
    assert result.percent_agreement == pytest.approx(equal / pairs, abs=1e-12)
    assert result.within_one_agreement == pytest.approx(within_one / pairs, abs=1e-12)


def test_support_counts_the_items_and_grades_each_statistic_rests_on():
    matrix = random_matrix(3, annotators=5, items=100, missing=0.6)
    ratings = Ratings.from_matrix(matrix)
    result = compute_agreement(ratings, bootstrap=0)
    per_item = (~np.isnan(matrix)).sum(axis=0)
    assert result.n_items == (per_item > 0).sum()
    assert result.n_judgments == per_item.sum()
    assert result.support["krippendorff_alpha"].n_items == (per_item >= 2).sum()
    assert result.support["krippendorff_alpha"].n_judgments == per_item[per_item >= 2].sum()
    assert result.support["cohen_kappa"].n_pairs == sum(p.kappa_quadratic is not None for p in result.pairs)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_alpha_per_group_equals_krippendorff_on_each_groups_items(level):
    """Per-query alpha: groups of items (candidates of one query) scored all at once."""
    matrix = random_matrix(9, annotators=5, items=90, missing=0.35)
    matrix[:, 80:] = 1.0  # the last group: everyone gives the same grade -> undefined
    ratings = Ratings.from_matrix(matrix)
    group_of_column = np.arange(90) // 10
    result = alpha_by_group(ratings, group_of_column[ratings.item_ids], level)
    for group in range(9):
        columns = matrix[:, group_of_column == group]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = krippendorff.alpha(columns, level_of_measurement=level, value_domain=[0, 1, 2, 3])
        if np.isnan(expected):
            assert np.isnan(result[group])
        else:
            assert result[group] == pytest.approx(expected, abs=1e-9)
    assert np.isnan(result[8])
