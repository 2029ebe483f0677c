"""Where a coefficient is undefined it is None with a reason, never NaN or a made-up 1.0.

`krippendorff.alpha` returns NaN (0/0) when every value is the same and raises when nothing can
be paired; sklearn returns NaN for an undefined kappa. We say None and why.
"""
from __future__ import annotations

import json
import warnings

import krippendorff
import numpy as np
import pytest

from annotate.agreement import (
    Ratings,
    RatingsError,
    compute_agreement,
    krippendorff_alpha,
)
from annotate.agreement.alpha import NO_PAIRABLE_ITEMS, NO_VARIATION

nan = np.nan


def test_everyone_giving_the_same_grade_leaves_alpha_and_kappas_undefined():
    matrix = np.full((3, 10), 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(krippendorff.alpha(matrix, level_of_measurement="ordinal", value_domain=[0, 1, 2, 3]))
    result = compute_agreement(Ratings.from_matrix(matrix))
    for level in ("nominal", "ordinal", "interval"):
        assert getattr(result, f"krippendorff_alpha_{level}") is None
        assert result.undefined[f"krippendorff_alpha_{level}"] == NO_VARIATION
    assert result.alpha_ordinal_ci95 is None
    assert result.fleiss_kappa is None and "same value" in result.undefined["fleiss_kappa"]
    assert all(pair.kappa_quadratic is None for pair in result.pairs)
    assert result.cohen_kappa_quadratic_mean is None
    assert result.percent_agreement == 1.0  # agreement itself is perfectly defined


def test_perfect_agreement_with_variation_is_alpha_one():
    matrix = np.array([[0, 1, 2, 3, 3], [0, 1, 2, 3, 3], [0, 1, nan, 3, nan]])
    result = compute_agreement(Ratings.from_matrix(matrix))
    assert result.krippendorff_alpha_ordinal == 1.0
    assert result.krippendorff_alpha_nominal == 1.0
    assert result.cohen_kappa_quadratic_mean == 1.0
    assert result.alpha_ordinal_ci95 == (1.0, 1.0)


def test_a_single_annotator_pairs_nothing():
    ratings = Ratings.from_arrays(["q1", "q2", "q3"], ["ann", "ann", "ann"], [0, 2, 3])
    with pytest.raises(ValueError):
        krippendorff.alpha(ratings.reliability_matrix(), value_domain=[0, 1, 2, 3])
    result = compute_agreement(ratings)
    assert (result.n_items, result.n_annotators, result.n_judgments) == (3, 1, 3)
    assert result.krippendorff_alpha_ordinal is None
    assert result.undefined["krippendorff_alpha_ordinal"] == NO_PAIRABLE_ITEMS
    assert result.fleiss_kappa is None and "single judge" in result.undefined["fleiss_kappa"]
    assert result.pairs == [] and result.cohen_kappa_quadratic_mean is None
    assert result.percent_agreement is None
    assert result.support["krippendorff_alpha"].n_items == 0


def test_items_with_one_grade_are_dropped_as_unpairable():
    paired = np.array([[0, 1, 2, 3, 1, 2], [0, 2, 2, 3, 1, 1]], dtype=float)
    lonely = np.array([[3, 0, nan], [nan, nan, 3]])
    with_lonely = Ratings.from_matrix(np.hstack([paired, lonely]))
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(with_lonely, level) == pytest.approx(
            krippendorff_alpha(Ratings.from_matrix(paired), level), abs=1e-12)
    result = compute_agreement(with_lonely, bootstrap=0)
    assert result.n_items == 9
    assert result.support["krippendorff_alpha"].n_items == 6


def test_empty_input_gives_zero_counts_and_no_figures():
    result = compute_agreement(Ratings.from_arrays([], [], []))
    assert (result.n_items, result.n_annotators, result.n_judgments) == (0, 0, 0)
    assert result.krippendorff_alpha_ordinal is None and result.alpha_ordinal_ci95 is None
    assert result.fleiss_kappa is None and result.cohen_kappa_quadratic_mean is None
    assert result.percent_agreement is None and result.pairs == []
    json.dumps(result.as_json(), allow_nan=False)


def test_all_missing_grades_are_empty_input():
    result = compute_agreement(Ratings.from_matrix(np.full((2, 4), nan)), bootstrap=10)
    assert result.n_judgments == 0 and result.krippendorff_alpha_interval is None


def test_results_are_plain_json_without_nan():
    matrix = np.array([[0, 0, 1, nan], [0, 0, nan, 2], [3, nan, 1, 2]])
    data = compute_agreement(Ratings.from_matrix(matrix), bootstrap=50).as_json()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["pairs"][0]["annotator_a"] == 0


# --- input checks ------------------------------------------------------------------------------

def test_a_grade_outside_the_scale_is_refused():
    with pytest.raises(RatingsError, match="grade 4 is outside the scale 0-3"):
        Ratings.from_arrays([1, 2], [1, 1], [3, 4])
    with pytest.raises(RatingsError, match="grade 0 is outside the scale 1-5"):
        Ratings.from_arrays([1, 2], [1, 1], [0, 5], scale=(1, 5))


def test_a_fractional_grade_is_refused():
    with pytest.raises(RatingsError, match="not an integer"):
        Ratings.from_arrays([1, 2], [1, 1], [1.0, 2.5])


def test_a_repeated_item_annotator_pair_is_refused():
    with pytest.raises(RatingsError, match="item 'q1' has more than one grade from annotator 'bob'"):
        Ratings.from_arrays(["q1", "q2", "q1"], ["bob", "bob", "bob"], [1, 2, 2])
    with pytest.raises(RatingsError, match="item 7 has more than one grade from annotator 3"):
        Ratings.from_arrays([7, 7, 8], [3, 3, 3], [1, 2, 2])


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(RatingsError, match="one length"):
        Ratings.from_arrays([1, 2], [1], [1, 2])


@pytest.mark.parametrize("scale", [(3, 0), (2, 2), "3-0", "a-b", "2", "-1-3"])
def test_a_malformed_scale_is_refused(scale):
    with pytest.raises(RatingsError):
        Ratings.from_arrays([1], [1], [1], scale=scale)


def test_ids_are_kept_as_labels_whatever_their_type():
    ratings = Ratings.from_arrays([1000, 5, 1000], ["x", "y", "y"], [1, 2, 3])
    assert list(ratings.item_ids) == [5, 1000] and list(ratings.annotator_ids) == ["x", "y"]
    assert ratings.reliability_matrix().tolist()[1] == [2.0, 3.0]


def test_large_sparse_database_ids_take_the_sorting_path():
    ratings = Ratings.from_arrays([10**12, 3, 10**12], [9, 9, 10**15], [0, 1, 2])
    assert ratings.n_items == 2 and ratings.n_annotators == 2
