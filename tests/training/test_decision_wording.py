"""The gate's sentence said again on the pages in the viewer's language (#16): in English exactly the
stored GateDecision.reason, in Chinese with the same figures; a decision missing a figure falls back
to the stored sentence."""
from __future__ import annotations

import json
import random
import re

import pytest
from django.utils import translation

from training.gate import FAILS, NOT_ENOUGH, OVERRIDE, PASSES, decide_promotion, one_sided_level
from training.wording import candidate_note, describe_decision, dev_source

HAN = re.compile(r"[\u4e00-\u9fff]")


def dev_figures(n: int, gain: float, seed: int = 0) -> tuple[dict, dict, dict]:
    rng = random.Random(seed)
    base = {f"q{i}": rng.uniform(0.3, 0.7) for i in range(n)}
    candidate = {q: min(1.0, max(0.0, v + gain + rng.gauss(0, 0.02))) for q, v in base.items()}
    bm25 = {q: max(0.0, v - 0.05) for q, v in base.items()}
    return candidate, base, bm25


def decision_of(branch: str, *, unused_override: bool = False):
    n, gain = {NOT_ENOUGH: (12, 0.1), OVERRIDE: (12, -0.1), FAILS: (40, -0.05), PASSES: (40, 0.1)}[branch]
    candidate, base, bm25 = dev_figures(n, gain)
    override = "first labels agree" if branch == OVERRIDE or unused_override else None
    decision = decide_promotion(candidate, {"promoted": base, "bm25": bm25, "zero-shot base": base},
                                override_reason=override)
    assert decision.branch == branch
    return decision, json.loads(json.dumps(decision.as_json()))  # as a run's metrics store it


@pytest.mark.parametrize("branch, unused_override", [
    (NOT_ENOUGH, False), (OVERRIDE, False), (FAILS, False), (FAILS, True), (PASSES, False), (PASSES, True),
])
def test_the_english_wording_is_the_stored_reason_of_each_branch(branch, unused_override):
    decision, stored = decision_of(branch, unused_override=unused_override)
    with translation.override("en"):
        assert describe_decision(stored) == decision.reason


@pytest.mark.parametrize("branch", [NOT_ENOUGH, OVERRIDE, FAILS, PASSES])
def test_the_chinese_wording_keeps_the_figures(branch):
    decision, stored = decision_of(branch)
    with translation.override("zh-hans"):
        said = describe_decision(stored)
    assert said != decision.reason and HAN.search(said)
    assert str(decision.dev_queries) in said
    if branch in (FAILS, PASSES):
        assert f"{decision.margin:+.4f}" in said and one_sided_level(decision.alpha) in said
        for comparison in decision.comparisons:
            if branch == PASSES or not comparison.passes:
                assert f"{comparison.mean_difference:+.4f}" in said and f"{comparison.lower_bound:+.4f}" in said
    else:
        assert str(decision.min_dev_queries) in said
    if branch == OVERRIDE:
        assert "first labels agree" in said


def test_reference_names_are_translated_in_the_sentence():
    _, stored = decision_of(PASSES)
    with translation.override("zh-hans"):
        said = describe_decision(stored)
    assert "零样本基础模型" in said and "zero-shot base" not in said and "BM25" in said


@pytest.mark.parametrize("missing", ["comparisons", "alpha", "min_dev_queries", "branch"])
def test_a_decision_recorded_without_a_figure_shows_its_stored_sentence(missing):
    decision, stored = decision_of(FAILS)
    del stored[missing]
    with translation.override("zh-hans"):
        assert describe_decision(stored) == decision.reason


@pytest.mark.parametrize("note", [
    "the base model as it is", "fine-tuned as a bi-encoder on the labels", "fine-tuned on the labels",
    "distilled from bi-encoder bi-encoder, then fine-tuned on the labels",
    "bi-encoder mixed with BM25 at weight 0.35 (fitted on 12 dev queries, cross-fitted in 5 folds)",
    "zero-shot mixed with BM25 at weight 0.2 (fitted on 40 train queries)",
])
def test_candidate_notes_are_worded_again_and_unknown_ones_kept(note):
    with translation.override("en"):
        assert candidate_note(note) == note
    with translation.override("zh-hans"):
        assert HAN.search(candidate_note(note)) and candidate_note("hand-written note") == "hand-written note"


def test_where_dev_came_from_is_worded_again():
    held_out = "10 of the snapshot's 48 train queries held out (no dev split)"
    with translation.override("en"):
        assert dev_source(held_out) == held_out
    with translation.override("zh-hans"):
        said = dev_source(held_out)
        assert "10" in said and "48" in said and HAN.search(said)
        assert "30" in dev_source("the snapshot's 30 dev queries")
