"""The position-based click model (annotate.clicks.click_model): it separates position bias from
attractiveness, where raw click-through rate cannot."""
from __future__ import annotations

import numpy as np
import pytest

from annotate.clicks.click_model import (
    ClickModelError,
    fit_position_based_model,
    ordinal_grades,
)


def _simulated_log(rng, *, n_pairs=200, positions=10, impressions=400):
    """Pairs of known attractiveness shown at positions with examination 1/r. Each pair has a
    'home' position it is mostly shown at (the engine's ranking, unrelated to attractiveness), and
    is moved up to two places away now and then."""
    attract = rng.uniform(0.02, 0.9, n_pairs)
    home = rng.integers(1, positions + 1, n_pairs)
    cells = {}
    for p in range(n_pairs):
        for _ in range(impressions):
            r = int(np.clip(home[p] + rng.integers(-2, 3), 1, positions))
            click = rng.random() < attract[p] / r
            cell = cells.setdefault((p, r), [0, 0])
            cell[0] += 1
            cell[1] += click
    keys = list(cells)
    arrays = [np.array([k[0] for k in keys]), np.array([k[1] for k in keys]),
              np.array([cells[k][0] for k in keys]), np.array([cells[k][1] for k in keys])]
    return attract, arrays


def test_the_fit_recovers_the_examination_curve_and_ranks_pairs_better_than_click_through_rate():
    rng = np.random.default_rng(7)
    attract, (pair, position, shown, clicked) = _simulated_log(rng)
    model = fit_position_based_model(pair, position, shown, clicked, n_pairs=len(attract))
    assert model.converged and model.identified
    # examination relative to the top: 1/r, within sampling noise
    np.testing.assert_allclose(model.relative_examination, 1 / np.arange(1, 11), atol=0.08)
    rank_corr = lambda a, b: np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]  # noqa: E731
    assert rank_corr(model.attractiveness, attract) > 0.9
    assert rank_corr(model.attractiveness, attract) > rank_corr(model.click_through_rate(), attract) + 0.2
    assert model.impressions.sum() == shown.sum() and model.clicks.sum() == clicked.sum()


def test_a_pair_seen_twice_at_the_bottom_stays_near_the_mean_not_at_zero():
    # pair 0: 1,000 impressions at position 1 with 300 clicks; pair 1: twice at position 10, no click
    model = fit_position_based_model(np.array([0, 0, 1]), np.array([1, 10, 10]), np.array([1000, 1000, 2]),
                                     np.array([300, 30, 0]), n_pairs=2)
    assert 0.05 < model.attractiveness[1] < model.attractiveness[0]
    assert model.examinations[1] < 1  # little evidence: about two impressions at a rarely examined spot


def test_a_log_where_no_pair_moves_is_reported_as_not_identified():
    model = fit_position_based_model(np.array([0, 1]), np.array([1, 2]), np.array([10, 10]), np.array([5, 2]),
                                     n_pairs=2)
    assert not model.identified


@pytest.mark.parametrize("pair, position, shown, clicked, message", [
    ([0], [0], [1], [0], "positions start at 1"),
    ([0], [1], [1], [2], "clicks must lie in 0..impressions"),
    ([3], [1], [1], [0], "pair indices must lie in 0..1"),
    ([0], [1.5], [1], [0], "position must hold integers"),
    ([0, 1], [1], [1], [0], "one length"),
])
def test_bad_counts_are_refused_with_the_rule_they_break(pair, position, shown, clicked, message):
    with pytest.raises(ClickModelError, match=message):
        fit_position_based_model(np.array(pair), np.array(position), np.array(shown), np.array(clicked), n_pairs=2)


def test_ordinal_grades_cut_at_the_given_shares_and_keep_ties_together():
    scores = np.array([0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    grades = ordinal_grades(scores, shares=[0.4, 0.2, 0.2, 0.2])
    assert grades.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert ordinal_grades(np.zeros(5)).tolist() == [0] * 5          # all tied: one grade
    assert (np.diff(ordinal_grades(np.arange(100.0))) >= 0).all()    # monotone in the score
    with pytest.raises(ClickModelError, match="shares must be 4"):
        ordinal_grades(scores, shares=[1, 1])
