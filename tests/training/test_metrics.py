"""NDCG@k, MRR@k, Recall@k and MAP as DESIGN.md defines them, checked by hand on tiny rankings
and against trec_eval (pytrec_eval) -- and ranx where installed -- on random graded data and on
trec-dl19's BM25 run."""

import math

import numpy as np
import pytest
import pytrec_eval

from training.metrics import (
    average_precision,
    evaluate,
    ndcg_at_k,
    rank_order,
    recall_at_k,
    reciprocal_rank_at_k,
)

TOLERANCE = 1e-6


def log2(x):
    return math.log2(x)


# --- hand-computed -----------------------------------------------------------------------------


def test_metrics_of_a_tiny_ranking_match_the_arithmetic():
    # Ranked by score: d1 (grade 1), d2 (grade 3), d3 (grade 0), d4 (grade 2).
    # d5 (grade 2) is judged but not retrieved: it counts in the ideal ranking and as relevant.
    runs = {"q": {"d1": 0.9, "d2": 0.8, "d3": 0.7, "d4": 0.6}}
    qrels = {"q": {"d1": 1, "d2": 3, "d3": 0, "d4": 2, "d5": 2}}

    dcg = 1 / log2(2) + 3 / log2(3) + 0 / log2(4) + 2 / log2(5)
    idcg = 3 / log2(2) + 2 / log2(3) + 2 / log2(4) + 1 / log2(5)
    # Relevant (grade >= 2): d2 at rank 2, d4 at rank 4; d5 never retrieved. 3 relevant in all.
    reciprocal_rank = 1 / 2
    recall = 2 / 3
    ap = (1 / 2 + 2 / 4 + 0) / 3

    result = evaluate(runs, qrels, k=10)

    assert result["queries"] == 1
    assert result["ndcg@10"] == pytest.approx(dcg / idcg, abs=1e-12)
    assert result["mrr@10"] == pytest.approx(reciprocal_rank, abs=1e-12)
    assert result["recall@10"] == pytest.approx(recall, abs=1e-12)
    assert result["map"] == pytest.approx(ap, abs=1e-12)


def test_cutoff_k_applies_to_ndcg_mrr_and_recall_but_not_map():
    # Ranking: d1 (0), d2 (0), d3 (3). With k=2 nothing relevant is in the top k.
    runs = {"q": {"d1": 3.0, "d2": 2.0, "d3": 1.0}}
    qrels = {"q": {"d1": 0, "d2": 0, "d3": 3}}

    result = evaluate(runs, qrels, k=2)

    assert result["ndcg@2"] == 0.0
    assert result["mrr@2"] == 0.0
    assert result["recall@2"] == 0.0
    assert result["map"] == pytest.approx(1 / 3)  # d3 found at rank 3: precision 1/3


def test_relevance_threshold_is_configurable_and_ndcg_ignores_it():
    runs = {"q": {"d1": 2.0, "d2": 1.0}}
    qrels = {"q": {"d1": 1, "d2": 3}}

    strict = evaluate(runs, qrels, relevance_threshold=2)
    lenient = evaluate(runs, qrels, relevance_threshold=1)

    assert strict["mrr@10"] == 1 / 2
    assert lenient["mrr@10"] == 1.0
    assert strict["map"] == 1 / 2
    assert lenient["map"] == 1.0
    assert strict["ndcg@10"] == lenient["ndcg@10"]


# --- which queries count -----------------------------------------------------------------------


def test_query_without_relevant_candidates_is_left_out_of_the_means():
    runs = {
        "good": {"a": 2.0, "b": 1.0},  # relevant doc first: every metric is 1
        "only_marginal": {"c": 2.0, "d": 1.0},  # grades 0 and 1: NDCG defined, nothing >= 2
        "all_zero": {"e": 2.0, "f": 1.0},  # ideal DCG is 0: left out of NDCG too
    }
    qrels = {
        "good": {"a": 3, "b": 0},
        "only_marginal": {"c": 0, "d": 1},
        "all_zero": {"e": 0, "f": 0},
    }

    result = evaluate(runs, qrels)

    assert result["queries"] == 1
    assert result["ndcg_queries"] == 2
    assert result["mrr@10"] == result["recall@10"] == result["map"] == 1.0
    marginal_ndcg = (1 / log2(3)) / (1 / log2(2))
    assert result["ndcg@10"] == pytest.approx((1.0 + marginal_ndcg) / 2)
    assert result["per_query"]["only_marginal"]["mrr@10"] is None
    assert result["per_query"]["all_zero"] == {
        "ndcg@10": None,
        "mrr@10": None,
        "recall@10": None,
        "map": None,
    }


def test_query_with_relevant_qrels_but_no_run_scores_zero():
    runs = {"answered": {"a": 1.0}}
    qrels = {"answered": {"a": 3}, "unanswered": {"b": 2}}

    result = evaluate(runs, qrels)

    assert result["queries"] == 2
    assert result["per_query"]["unanswered"] == {
        "ndcg@10": 0.0,
        "mrr@10": 0.0,
        "recall@10": 0.0,
        "map": 0.0,
    }
    assert result["ndcg@10"] == 0.5


def test_evaluating_nothing_relevant_is_an_error():
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate({"q": {"a": 1.0}}, {"q": {"a": 0}})


# --- ties and padding --------------------------------------------------------------------------


def test_ties_keep_input_order_so_equal_scores_evaluate_the_input_order():
    qrels = {"q": {"a": 0, "b": 3}}

    b_listed_first = evaluate({"q": {"b": 0.0, "a": 0.0}}, qrels)
    a_listed_first = evaluate({"q": {"a": 0.0, "b": 0.0}}, qrels)

    assert b_listed_first["mrr@10"] == 1.0
    assert a_listed_first["mrr@10"] == 0.5
    assert rank_order(np.array([[1.0, 5.0, 1.0, 5.0]])).tolist() == [[1, 3, 0, 2]]


def test_padding_is_ignored_whatever_its_score_or_grade():
    scores = np.array([[0.3, 0.9, 0.1]])
    grades = np.array([[2, 0, 3]])
    padded_scores = np.array([[1e9, 0.3, 0.9, 0.1, 1e9]])
    padded_grades = np.array([[3, 2, 0, 3, 3]])
    mask = np.array([[False, True, True, True, False]])

    for metric in (ndcg_at_k, reciprocal_rank_at_k, recall_at_k, average_precision):
        plain = metric(scores, grades)
        padded = metric(padded_scores, padded_grades, mask)
        assert padded.tolist() == pytest.approx(plain.tolist()), metric.__name__


def test_array_functions_score_queries_of_different_lengths_in_one_batch():
    # Query 0: 3 candidates; query 1: 1 candidate, padded to 3.
    scores = np.array([[0.1, 0.5, 0.9], [0.2, 0.0, 0.0]])
    grades = np.array([[3, 0, 0], [2, 0, 0]])
    mask = np.array([[True, True, True], [True, False, False]])

    assert reciprocal_rank_at_k(scores, grades, mask).tolist() == [1 / 3, 1.0]
    assert ndcg_at_k(scores, grades, mask).tolist() == pytest.approx([3 / log2(4) / 3, 1.0])


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ndcg_at_k([[1.0, 2.0]], [[1, 2, 3]]), "does not match scores shape"),
        (lambda: ndcg_at_k([1.0, 2.0], [1, 2]), r"\[n_queries, n_candidates\]"),
        (lambda: ndcg_at_k([[float("nan"), 1.0]], [[1, 2]]), r"scores\[0, 0\] is NaN"),
        (lambda: ndcg_at_k([[1.0, 2.0]], [[-1, 2]]), "must be >= 0"),
        (lambda: ndcg_at_k([[1.0, 2.0]], [[1, 2]], [[1, 0]]), "mask must be boolean"),
        (lambda: ndcg_at_k([[1.0, 2.0]], [[1, 2]], k=0), "k must be a positive integer"),
        (lambda: recall_at_k([[1.0]], [[2]], relevance_threshold=0), "relevance_threshold"),
        (lambda: evaluate({"q": {"a": "high"}}, {"q": {"a": 1}}), r"runs\['q'\]\['a'\]"),
        (lambda: evaluate({"q": {"a": 1.0}}, {"q": {"a": -1}}), r"qrels\['q'\]\['a'\]: grade"),
        (lambda: evaluate({"q": {"a": float("nan")}}, {"q": {"a": 1}}), "score is NaN"),
        (lambda: evaluate({}, {}), "both empty"),
    ],
)
def test_bad_input_is_rejected_with_a_message_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- against trec_eval and ranx ----------------------------------------------------------------


def random_graded_collection(seed: int, n_queries: int = 60):
    """Runs with untied scores and qrels that judge some unretrieved documents and leave some
    retrieved ones unjudged; every tenth query has only grade 0."""
    rng = np.random.default_rng(seed)
    runs, qrels = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        n_retrieved = int(rng.integers(1, 40))
        docs = [f"d{q}_{i}" for i in range(n_retrieved + 10)]
        retrieved = docs[:n_retrieved]
        scores = rng.permutation(n_retrieved) + rng.random(n_retrieved) * 0.5  # all distinct
        runs[qid] = {doc: float(score) for doc, score in zip(retrieved, scores)}
        judged = [doc for doc in docs if rng.random() < 0.7]
        grade_odds = [1.0, 0, 0, 0] if q % 10 == 0 else [0.5, 0.2, 0.2, 0.1]
        qrels[qid] = {doc: int(rng.choice(4, p=grade_odds)) for doc in judged}
    return runs, qrels


def trec_eval_per_query(runs, qrels, k, relevance_threshold):
    ndcg = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{k}"}).evaluate(runs)
    binary = pytrec_eval.RelevanceEvaluator(
        qrels, {f"recall.{k}", "map"}, relevance_level=relevance_threshold
    ).evaluate(runs)
    # trec_eval has no cut-off for recip_rank: MRR@k is recip_rank over the top k only.
    top_k = {
        qid: dict(sorted(docs.items(), key=lambda item: -item[1])[:k]) for qid, docs in runs.items()
    }
    rr = pytrec_eval.RelevanceEvaluator(
        qrels, {"recip_rank"}, relevance_level=relevance_threshold
    ).evaluate(top_k)
    return {
        qid: {
            f"ndcg@{k}": ndcg[qid][f"ndcg_cut_{k}"],
            f"mrr@{k}": rr[qid]["recip_rank"],
            f"recall@{k}": binary[qid][f"recall_{k}"],
            "map": binary[qid]["map"],
        }
        for qid in runs
    }


def assert_equal_to_reference(ours, reference):
    """Per query: equal where we keep the query; where we leave it out the reference scores 0."""
    for qid, expected in reference.items():
        for name, value in expected.items():
            kept = ours["per_query"][qid][name]
            if kept is None:
                assert value == 0.0, (qid, name)
            else:
                assert abs(kept - value) < TOLERANCE, (qid, name, kept, value)
    for name in reference[next(iter(reference))]:
        kept = [v[name] for qid, v in ours["per_query"].items() if v[name] is not None]
        reference_mean = sum(reference[qid][name] for qid in reference) / len(kept)
        assert abs(ours[name] - reference_mean) < TOLERANCE, name


@pytest.mark.parametrize(("k", "relevance_threshold"), [(10, 2), (5, 1), (3, 3)])
def test_equal_to_trec_eval_on_random_graded_data(k, relevance_threshold):
    runs, qrels = random_graded_collection(seed=k)

    ours = evaluate(runs, qrels, k=k, relevance_threshold=relevance_threshold)

    assert ours["queries"] < len(runs)  # the data exercises left-out queries
    assert_equal_to_reference(ours, trec_eval_per_query(runs, qrels, k, relevance_threshold))


def read_trec_run(path):
    runs = {}
    with open(path) as lines:
        for line in lines:
            qid, _q0, docid, _rank, score, _tag = line.split()
            runs.setdefault(qid, {})[docid] = float(score)
    return runs


def read_beir_qrels(path):
    qrels = {}
    with open(path) as lines:
        next(lines)  # header: query-id corpus-id score
        for line in lines:
            qid, docid, grade = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[docid] = int(grade)
    return qrels


@pytest.fixture
def dl19_bm25(datasets):
    dl19 = datasets / "trec-dl19"
    runs = read_trec_run(dl19 / "run.bm25.trec")
    qrels = read_beir_qrels(dl19 / "qrels.tsv")
    for docs in runs.values():  # the reference comparison needs untied scores
        assert len(set(docs.values())) == len(docs)
    return runs, qrels


def test_equal_to_trec_eval_on_trec_dl19_bm25_run(dl19_bm25):
    runs, qrels = dl19_bm25

    ours = evaluate(runs, qrels, k=10, relevance_threshold=2)

    assert ours["ndcg_queries"] == len(runs) == 43
    assert_equal_to_reference(ours, trec_eval_per_query(runs, qrels, 10, 2))


@pytest.mark.slow
def test_equal_to_ranx_on_trec_dl19_bm25_run(dl19_bm25):
    # ranx JIT-compiles with numba: about a minute the first time, seconds once cached.
    ranx = pytest.importorskip("ranx")
    runs, qrels = dl19_bm25

    ours = evaluate(runs, qrels, k=10, relevance_threshold=2)
    # ranx counts a document relevant at grade >= rel_lvl, set by the "-l" suffix (default 1);
    # NDCG uses the grade as gain whatever the level.
    per_query = {
        name: ranx.evaluate(ranx.Qrels(qrels), ranx.Run(runs), metric, return_mean=False)
        for name, metric in [
            ("ndcg@10", "ndcg@10"),
            ("mrr@10", "mrr@10-l2"),
            ("recall@10", "recall@10-l2"),
            ("map", "map-l2"),
        ]
    }
    query_ids = list(ranx.Run(runs).keys())
    reference = {
        qid: {name: float(values[i]) for name, values in per_query.items()}
        for i, qid in enumerate(query_ids)
    }
    assert_equal_to_reference(ours, reference)
