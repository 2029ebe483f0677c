"""Reciprocal rank fusion: the formula, weights (also `run:*`), ties, bad weights."""
import pytest

from mining.fusion import reciprocal_rank_fusion, source_weight


def test_rrf_sums_one_over_k_plus_rank():
    fused = dict(reciprocal_rank_fusion({"bm25": ["a", "b", "c"], "dense": ["b", "d"]}, k=60))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["d"] == pytest.approx(1 / 62)
    assert list(dict(reciprocal_rank_fusion({"bm25": ["a", "b", "c"], "dense": ["b", "d"]}))) == ["b", "a", "d", "c"]


def test_weights_per_source_and_wildcards():
    rankings = {"bm25": ["a", "b"], "run:x": ["b", "a"]}
    assert [d for d, _ in reciprocal_rank_fusion(rankings, weights={"run:*": 3})] == ["b", "a"]
    assert [d for d, _ in reciprocal_rank_fusion(rankings, weights={"bm25": 3})] == ["a", "b"]
    assert source_weight({"run:*": 0.5, "run:y": 2}, "run:y") == 2
    assert source_weight(None, "dense") == 1


def test_ties_break_by_best_rank_then_source_order():
    # a and b both rank 1 once and 2 once: equal fused scores; a reached rank 1 in the first source
    fused = reciprocal_rank_fusion({"bm25": ["a", "b"], "dense": ["b", "a"]})
    assert [d for d, _ in fused] == ["a", "b"]


def test_negative_weight_is_an_error():
    with pytest.raises(ValueError, match="weight of 'dense'"):
        reciprocal_rank_fusion({"dense": ["a"]}, weights={"dense": -1})
