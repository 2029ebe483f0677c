"""Hard-negative selection with hand-made scores: ranks, max_score, margins (negative scores too), dedup, strategies."""
import pytest

from mining.negatives import (
    NegativeSettings,
    Scored,
    jaccard,
    margin_bar,
    max_similarity_to_positives,
    select,
    select_negatives,
)


def pool_of(scores):
    return [Scored(f"d{i}", i + 1, score) for i, score in enumerate(scores)]


def docs(selected):
    return [s.document for s in selected]


def test_top_strategy_keeps_the_best_ranked_within_the_range():
    pool = pool_of([9, 8, 7, 6, 5, 4])
    chosen = select_negatives(pool, positive_scores={}, settings=NegativeSettings(count=2, range_min=2, range_max=5))
    assert docs(chosen) == ["d2", "d3"]  # ranks 1-2 skipped


def test_range_max_is_the_pool_depth():
    pool = pool_of([9, 8, 7, 6, 5, 4])
    chosen = select_negatives(pool, positive_scores={}, settings=NegativeSettings(count=10, range_max=3))
    assert docs(chosen) == ["d0", "d1", "d2"]


def test_max_score_drops_documents_scoring_above_it():
    pool = pool_of([9, 8, 7, 6])
    chosen = select_negatives(pool, positive_scores={}, settings=NegativeSettings(count=10, max_score=7.5))
    assert docs(chosen) == ["d2", "d3"]


def test_relative_margin_below_the_lowest_positive():
    pool = pool_of([12, 9.6, 9.4, 5])
    # positives 20 and 10: the lowest (10) sets the bar at 10 - 10 * 0.05 = 9.5
    chosen = select_negatives(pool, positive_scores={"p1": 20, "p2": 10}, settings=NegativeSettings(margin=0.05))
    assert docs(chosen) == ["d2", "d3"]


def test_relative_margin_with_negative_scores_stays_below_the_positive():
    # pos = -2, margin 0.1 -> bar -2.2 (below the positive), not -1.8
    assert margin_bar(-2.0, NegativeSettings(margin=0.1)) == pytest.approx(-2.2)
    pool = pool_of([-1.9, -2.1, -2.2, -2.3])
    chosen = select_negatives(pool, positive_scores={"p": -2.0}, settings=NegativeSettings(margin=0.1))
    assert docs(chosen) == ["d2", "d3"]  # -2.2 is not above the bar: kept


def test_absolute_margin_and_both_margins_take_the_stricter_bar():
    pool = pool_of([4.5, 3.9, 2.9, 1])
    assert docs(select_negatives(pool, positive_scores={"p": 5}, settings=NegativeSettings(abs_margin=1))) == ["d1", "d2", "d3"]
    both = NegativeSettings(abs_margin=1, margin=0.5)  # bars 4 and 2.5 -> 2.5
    assert docs(select_negatives(pool, positive_scores={"p": 5}, settings=both)) == ["d3"]
    assert margin_bar(-1.0, NegativeSettings(abs_margin=0.5)) == -1.5


def test_margins_need_a_known_positive():
    pool = pool_of([9, 8])
    assert docs(select_negatives(pool, positive_scores={}, settings=NegativeSettings(margin=0.5))) == ["d0", "d1"]


def test_positives_and_judged_pairs_are_never_offered():
    pool = pool_of([9, 8, 7, 6])
    chosen = select_negatives(pool, positive_scores={"d0": 9}, never={"d2"},
                              settings=NegativeSettings(count=10, margin=None))
    assert docs(chosen) == ["d1", "d3"]


def test_near_duplicates_of_a_positive_are_dropped():
    tokens = {"p": {"small", "red", "cat"}, "d0": {"small", "red", "cat", "the"}, "d1": {"dog", "river"}}
    similarity = max_similarity_to_positives(["d0", "d1"], tokens, ["p"])
    assert similarity == {"d0": 0.75, "d1": 0.0}
    pool = pool_of([3, 2])
    chosen = select_negatives(pool, positive_scores={"p": 10}, similarity_to_positive=similarity,
                              settings=NegativeSettings(dedup=0.7))
    assert docs(chosen) == ["d1"]
    assert jaccard(set(), set()) == 0.0


def test_random_strategy_is_seeded_per_query_and_stays_in_pool_order():
    pool = pool_of(list(range(30, 0, -1)))
    settings = NegativeSettings(count=5, range_max=30, strategy="random", seed=7)
    first = select_negatives(pool, positive_scores={}, settings=settings, query_key="q1")
    again = select_negatives(pool, positive_scores={}, settings=settings, query_key="q1")
    other = select_negatives(pool, positive_scores={}, settings=settings, query_key="q2")
    assert first == again and len(first) == 5
    assert docs(first) != docs(other)
    assert [s.rank for s in first] == sorted(s.rank for s in first)
    assert docs(first) != docs(pool[:5])


@pytest.mark.parametrize("bad, message", [
    ({"count": -1}, "count"), ({"range_min": 5, "range_max": 5}, "range_min"), ({"margin": -0.1}, "margin"),
    ({"dedup": 1.5}, "dedup"), ({"strategy": "best"}, "strategy"), ({"abs_margin": "x"}, "abs_margin"),
    ({"lane": -1}, "lane"), ({"lane": 1.5}, "lane"),
])
def test_bad_settings_name_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        NegativeSettings(**bad)
    with pytest.raises(ValueError, match="unknown negative setting"):
        NegativeSettings.from_dict({"colour": 1})


def test_what_a_guard_drops_goes_to_the_false_negative_lane_tagged_with_that_guard():
    pool = pool_of([30, 25, 11, 9.6, 9.4, 5])
    similarity = {"d4": 0.9}
    settings = NegativeSettings(count=10, range_min=1, max_score=20, margin=0.05, dedup=0.8, lane=10)
    chosen = select(pool, positive_scores={"p": 10}, settings=settings, similarity_to_positive=similarity)
    # rank 1 skipped by range_min; 25 over max_score; 11 and 9.6 above the bar 9.5; d4 a near-duplicate
    assert [(s.document, s.guard) for s in chosen.lane] == [
        ("d0", "range_min"), ("d1", "max_score"), ("d2", "margin"), ("d3", "margin"), ("d4", "dedup")]
    assert docs(chosen.negatives) == ["d5"] and all(s.guard is None for s in chosen.negatives)


def test_positives_judged_pairs_and_documents_past_the_depth_never_enter_the_lane():
    pool = pool_of([12, 11, 10.5, 10.2])
    settings = NegativeSettings(count=10, range_max=3, margin=0.05, lane=10)
    chosen = select(pool, positive_scores={"d0": 12, "p": 10}, never={"d1"}, settings=settings)
    assert docs(chosen.lane) == ["d2"]  # d3 is past range_max


def test_the_lane_is_a_seeded_sample_per_query_kept_in_pool_order():
    pool = pool_of(list(range(40, 10, -1)))
    settings = NegativeSettings(count=3, margin=0.05, lane=4, seed=3)
    first = select(pool, positive_scores={"p": 10}, settings=settings, query_key="q1").lane
    again = select(pool, positive_scores={"p": 10}, settings=settings, query_key="q1").lane
    other = select(pool, positive_scores={"p": 10}, settings=settings, query_key="q2").lane
    assert first == again and len(first) == 4 and docs(first) != docs(other)
    assert [s.rank for s in first] == sorted(s.rank for s in first)
    assert select(pool, positive_scores={"p": 10}, settings=NegativeSettings(margin=0.05)).lane == []  # lane 0: off
