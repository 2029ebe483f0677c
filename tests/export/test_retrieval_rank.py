"""The export's retrieval_rank: the best rank among the sources that retrieved the pair."""
from annotate.export.labelling import best_rank


def test_the_best_retrieval_rank_is_taken_and_the_machine_judges_ranking_is_not_one():
    sources = {"bm25": {"rank": 7, "score": 3.2}, "dense": {"rank": 4, "score": 0.6},
               "machine": {"rank": 1, "score": 2.0, "probs": [0.1, 0.2, 0.3, 0.4]}, "qrels:q.tsv": {}}
    assert best_rank(sources) == 4
    assert best_rank({"machine": {"rank": 1}}) is None
    assert best_rank({"bm25": {"rank": True}, "run:x": {"rank": 0}, "labels": {"role": "positive"}}) is None
