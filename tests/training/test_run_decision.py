"""training.gate.decide_run: every candidate gated against the references and the zero-shot base;
the best passing one wins; with none passing, the best on dev is kept but not promoted."""
from __future__ import annotations

import numpy as np
import pytest

from training.gate import FAILS, NOT_ENOUGH, PASSES, GateInputError, decide_run


def figures(values):
    return {f"q{i}": float(np.clip(v, 0.0, 1.0)) for i, v in enumerate(values)}


@pytest.fixture
def dev():
    rng = np.random.default_rng(3)
    bm25 = rng.uniform(0.2, 0.5, size=60)
    return bm25, rng


def test_the_best_candidate_that_passes_wins(dev):
    bm25, rng = dev
    zero_shot = bm25 + 0.15 + rng.normal(0, 0.02, bm25.size)
    better = zero_shot + 0.06 + rng.normal(0, 0.02, bm25.size)
    best_but_noisy = zero_shot + 0.1 + rng.normal(0, 0.5, bm25.size)  # no sure gain
    choice = decide_run({"zero-shot": figures(zero_shot), "bi-encoder": figures(better),
                         "cross-encoder": figures(best_but_noisy)},
                        {"bm25": figures(bm25)}, zero_shot="zero-shot")
    assert choice.decisions["zero-shot"].branch == PASSES      # it beats BM25
    assert choice.decisions["bi-encoder"].branch == PASSES     # it beats BM25 and the zero-shot base
    assert choice.decisions["cross-encoder"].branch == FAILS
    assert choice.winner == choice.chosen == "bi-encoder"
    compared = {c.reference for c in choice.decisions["bi-encoder"].comparisons}
    assert compared == {"bm25", "zero-shot base"}
    assert {c.reference for c in choice.decisions["zero-shot"].comparisons} == {"bm25"}


def test_with_none_passing_the_best_on_dev_is_kept_but_nothing_wins(dev):
    bm25, rng = dev
    worse = bm25 - 0.2
    slightly = bm25 + rng.normal(0, 0.05, bm25.size)
    choice = decide_run({"zero-shot": figures(worse), "cross-encoder": figures(slightly)}, {"bm25": figures(bm25)},
                        zero_shot="zero-shot")
    assert choice.winner is None and choice.chosen == "cross-encoder"
    assert choice.decision.branch == FAILS and "not promoted" in choice.decision.reason


def test_a_small_dev_set_promotes_nothing(dev):
    bm25, _ = dev
    few = {k: v for k, v in list(figures(bm25 + 0.3).items())[:8]}
    choice = decide_run({"zero-shot": few}, {"bm25": figures(bm25)}, zero_shot="zero-shot")
    assert choice.winner is None and choice.decision.branch == NOT_ENOUGH
    assert "not enough dev queries (8)" in choice.decision.reason


def test_a_run_without_candidates_or_references_is_refused(dev):
    with pytest.raises(GateInputError, match="at least one candidate"):
        decide_run({}, {"bm25": {}})
    with pytest.raises(GateInputError, match="no reference"):
        decide_run({"zero-shot": {"q": 0.5}}, {}, zero_shot="zero-shot")
