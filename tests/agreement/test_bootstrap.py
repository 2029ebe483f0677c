"""The bootstrap interval for alpha: resampling items, seeded, and the same distribution as drawing
item indices one by one."""
from __future__ import annotations

import numpy as np
import pytest

from annotate.agreement import (
    Ratings,
    bootstrap_alpha,
    coincidence_matrix,
    compute_agreement,
    value_counts,
)
from annotate.agreement.alpha import alpha_from_coincidences

from .conftest import random_matrix


def test_same_seed_same_interval_other_seed_other_interval():
    ratings = Ratings.from_matrix(random_matrix(0, annotators=5, items=150, missing=0.4))
    first = compute_agreement(ratings, bootstrap=300, seed=1)
    again = compute_agreement(ratings, bootstrap=300, seed=1)
    other = compute_agreement(ratings, bootstrap=300, seed=2)
    assert first.alpha_ordinal_ci95 == again.alpha_ordinal_ci95
    assert first.alpha_ordinal_ci95 != other.alpha_ordinal_ci95


def test_interval_brackets_alpha_and_narrows_with_more_items():
    small = compute_agreement(Ratings.from_matrix(random_matrix(3, annotators=4, items=60, missing=0.2)), bootstrap=500)
    large = compute_agreement(Ratings.from_matrix(random_matrix(3, annotators=4, items=2000, missing=0.2)), bootstrap=500)
    for result in (small, large):
        for level in ("nominal", "ordinal", "interval"):
            low, high = getattr(result, f"alpha_{level}_ci95")
            assert low <= getattr(result, f"krippendorff_alpha_{level}") <= high
    width = lambda r: r.alpha_ordinal_ci95[1] - r.alpha_ordinal_ci95[0]  # noqa: E731
    assert width(large) < width(small) / 3


def test_matches_a_plain_item_resampling_bootstrap():
    """Drawing value-count patterns from a multinomial is the same distribution as drawing items."""
    ratings = Ratings.from_matrix(random_matrix(5, annotators=4, items=120, missing=0.3))
    counts = value_counts(ratings)
    counts = counts[counts.sum(axis=1) >= 2]
    rng = np.random.default_rng(11)
    plain = [alpha_from_coincidences(coincidence_matrix(counts[rng.integers(0, len(counts), len(counts))]),
                                     "ordinal", ratings.scale) for _ in range(2000)]
    expected = np.percentile(plain, [2.5, 97.5])
    low, high = bootstrap_alpha(counts, ratings.scale, levels=["ordinal"], resamples=2000, seed=3)["ordinal"]
    assert low == pytest.approx(expected[0], abs=0.03)
    assert high == pytest.approx(expected[1], abs=0.03)


def test_zero_resamples_gives_no_interval():
    ratings = Ratings.from_matrix(random_matrix(0, annotators=3, items=20, missing=0.0))
    result = compute_agreement(ratings, bootstrap=0)
    assert result.alpha_ordinal_ci95 is None and "no bootstrap" in result.undefined["alpha_ordinal_ci95"]
    assert result.krippendorff_alpha_ordinal is not None
