"""The promotion gate: each decision branch, determinism, refused inputs, and that it tells a
clearly better model from an equal one on simulated dev sets."""
import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from training.config import DEFAULT_PROMOTION_MARGIN
from training.gate import (
    DEFAULT_ALPHA,
    FAILS,
    NOT_ENOUGH,
    OVERRIDE,
    PASSES,
    GateInputError,
    decide_promotion,
    expanded_alpha,
    one_sided_level,
)


def dev_figures(queries: int, gain: float, *, seed: int = 0, noise_sd: float = 0.05):
    """Per-query NDCG@10 of an incumbent (TREC-like spread) and of a candidate ``gain`` better."""
    rng = np.random.default_rng(seed)
    incumbent = rng.beta(1.5, 1.5, queries)
    candidate = np.clip(incumbent + gain + rng.normal(0, noise_sd, queries), 0, 1)
    ids = [f"q{i}" for i in range(queries)]
    return dict(zip(ids, candidate.tolist())), dict(zip(ids, incumbent.tolist()))


def shifted(figures: dict, by: float) -> dict:
    return {q: min(1.0, max(0.0, v + by)) for q, v in figures.items()}


def test_a_clearly_better_model_on_50_queries_passes_every_reference():
    candidate, incumbent = dev_figures(50, gain=0.08)
    decision = decide_promotion(candidate, {"promoted": incumbent, "bm25": shifted(incumbent, -0.2)})

    assert decision.promote and decision.branch == PASSES
    assert decision.dev_queries == 50
    assert all(c.passes and c.lower_bound > DEFAULT_PROMOTION_MARGIN for c in decision.comparisons)
    assert decision.reason.startswith("promoted:") and "50 dev queries" in decision.reason


def test_a_model_equal_to_the_incumbent_is_not_promoted():
    candidate, incumbent = dev_figures(50, gain=0.0)
    decision = decide_promotion(candidate, {"promoted": incumbent})

    assert not decision.promote and decision.branch == FAILS
    assert decision.comparisons[0].lower_bound <= DEFAULT_PROMOTION_MARGIN


def test_failing_one_reference_names_it_and_its_lower_bound_even_when_others_pass():
    candidate, incumbent = dev_figures(40, gain=0.0)
    decision = decide_promotion(candidate, {"bm25": shifted(incumbent, -0.3), "zero-shot base": incumbent})

    assert not decision.promote and decision.branch == FAILS
    bm25, base = decision.comparisons
    assert bm25.passes and not base.passes
    assert "fails against zero-shot base" in decision.reason and "bm25" not in decision.reason
    assert f"{base.lower_bound:+.4f}" in decision.reason


def test_too_few_dev_queries_promote_nothing_however_good_the_model():
    candidate, incumbent = dev_figures(12, gain=0.3)
    decision = decide_promotion(candidate, {"promoted": incumbent})

    assert not decision.promote and decision.branch == NOT_ENOUGH
    assert decision.reason.startswith("not enough dev queries (12)")
    assert decision.comparisons[0].passes  # the test alone would have promoted it


def test_staff_override_promotes_a_small_dev_set_and_records_why():
    candidate, incumbent = dev_figures(12, gain=-0.1)
    decision = decide_promotion(candidate, {"promoted": incumbent},
                                override_reason="  first labels; the base must not serve  ")

    assert decision.promote and decision.branch == OVERRIDE
    assert decision.override_reason == "first labels; the base must not serve"
    assert "not enough dev queries (12)" in decision.reason and "first labels" in decision.reason


def test_an_override_does_not_overrule_the_test_when_dev_is_large_enough():
    candidate, incumbent = dev_figures(50, gain=-0.05)
    decision = decide_promotion(candidate, {"promoted": incumbent}, override_reason="we like it")

    assert not decision.promote and decision.branch == FAILS
    assert decision.override_reason is None and "override not applied" in decision.reason


def test_an_empty_dev_set_is_not_enough_and_reports_no_figures():
    decision = decide_promotion({}, {"bm25": {}})

    assert not decision.promote and decision.branch == NOT_ENOUGH and decision.dev_queries == 0
    assert decision.candidate_mean is None and decision.comparisons == ()
    json.dumps(decision.as_json())


def test_the_same_seed_gives_the_same_decision_and_intervals_whatever_the_dict_order():
    candidate, incumbent = dev_figures(30, gain=0.02)
    reordered = dict(reversed(list(candidate.items())))
    first = decide_promotion(candidate, {"promoted": incumbent}, seed=7)

    assert decide_promotion(reordered, {"promoted": incumbent}, seed=7) == first
    other = decide_promotion(candidate, {"promoted": incumbent}, seed=8)
    assert other.comparisons[0].interval != first.comparisons[0].interval


def test_intervals_bracket_the_means_and_their_low_end_is_the_decisions_bound():
    candidate, incumbent = dev_figures(60, gain=0.03, noise_sd=0.1)
    decision = decide_promotion(candidate, {"promoted": incumbent})
    low, high = decision.candidate_interval
    comparison = decision.comparisons[0]

    assert low < decision.candidate_mean < high
    assert comparison.interval[0] < comparison.mean_difference < comparison.interval[1]
    assert math.isclose(comparison.mean_difference, comparison.candidate_mean - comparison.reference_mean)
    assert comparison.passes == (comparison.lower_bound > decision.margin)
    assert decision.interval_level == pytest.approx(1 - 2 * DEFAULT_ALPHA) == pytest.approx(0.95)


def test_small_dev_sets_read_a_wider_percentile_so_the_bound_keeps_its_level():
    # Student's t(19) and t(49) quantiles (any t table): 95% 1.729 and 1.677, 97.5% 2.093 and 2.010.
    assert expanded_alpha(0.05, 20) == pytest.approx(NormalDist().cdf(-math.sqrt(20 / 19) * 1.729), abs=1e-4)
    assert expanded_alpha(0.05, 50) == pytest.approx(NormalDist().cdf(-math.sqrt(50 / 49) * 1.677), abs=1e-4)
    assert expanded_alpha(0.025, 20) == pytest.approx(NormalDist().cdf(-math.sqrt(20 / 19) * 2.093), abs=1e-4)
    assert expanded_alpha(0.025, 50) == pytest.approx(NormalDist().cdf(-math.sqrt(50 / 49) * 2.010), abs=1e-4)
    assert expanded_alpha(0.05, 20) < expanded_alpha(0.05, 50) < expanded_alpha(0.05, 1000) < 0.05
    candidate, incumbent = dev_figures(20, gain=0.02)
    assert decide_promotion(candidate, {"promoted": incumbent}).bootstrap_alpha == expanded_alpha(DEFAULT_ALPHA, 20)


def test_the_decision_names_its_one_sided_level_as_people_write_it():
    assert (one_sided_level(0.025), one_sided_level(0.05), one_sided_level(0.1)) == ("97.5%", "95%", "90%")
    candidate, incumbent = dev_figures(40, gain=0.2)
    assert "promoted: the 97.5% lower bound" in decide_promotion(candidate, {"promoted": incumbent}).reason


def test_as_json_holds_every_figure_for_the_runs_page():
    candidate, incumbent = dev_figures(25, gain=0.05)
    stored = json.loads(json.dumps(decide_promotion(candidate, {"promoted": incumbent}).as_json()))

    assert stored["dev_queries"] == 25 and stored["branch"] in (PASSES, FAILS)
    assert len(stored["candidate_interval"]) == 2
    assert set(stored["comparisons"][0]) >= {"reference", "candidate_mean", "reference_mean",
                                              "mean_difference", "interval", "passes"}


def test_a_reference_lacking_a_candidates_query_is_refused_naming_it():
    candidate, incumbent = dev_figures(25, gain=0.05)
    del incumbent["q7"]

    with pytest.raises(GateInputError, match=r"reference 'bm25' lacks 1 dev queries .*'q7'"):
        decide_promotion(candidate, {"bm25": incumbent})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.01, 1.2, "0.5", None])
def test_a_figure_that_is_not_a_finite_ndcg_is_refused_naming_the_query(bad):
    candidate, incumbent = dev_figures(25, gain=0.05)
    incumbent["q3"] = bad

    with pytest.raises(GateInputError, match=r"reference 'promoted'.*'q3'"):
        decide_promotion(candidate, {"promoted": incumbent})


@pytest.mark.parametrize("reason", ["", "   ", 42])
def test_an_override_without_a_reason_is_refused(reason):
    candidate, incumbent = dev_figures(5, gain=0.05)

    with pytest.raises(GateInputError, match="override needs a reason"):
        decide_promotion(candidate, {"promoted": incumbent}, override_reason=reason)


@pytest.mark.parametrize("setting", [{"alpha": 0.0}, {"alpha": 0.5}, {"margin": float("nan")},
                                     {"min_dev_queries": 0}, {"resamples": 10}, {"seed": -1}])
def test_bad_settings_are_refused_naming_the_setting(setting):
    candidate, incumbent = dev_figures(25, gain=0.05)

    with pytest.raises(GateInputError, match=next(iter(setting))):
        decide_promotion(candidate, {"promoted": incumbent}, **setting)


def test_a_gate_with_no_reference_is_refused():
    candidate, _ = dev_figures(25, gain=0.05)

    with pytest.raises(GateInputError, match="at least one reference"):
        decide_promotion(candidate, {})
