import json
import math

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from mining.text.bm25 import BM25Index
from mining.text.tokenize import tokenize_many


def assert_matches_rank_bm25(index, reference, queries, ks=(10,)):
    """Scores of every document to 1e-6 relative; top-k the same documents up to exact ties."""
    expected_scores = [reference.get_scores(query) for query in queries]
    for query, expected in zip(queries, expected_scores):
        np.testing.assert_allclose(index.scores(query), expected, rtol=1e-6, atol=1e-12)
    for k in ks:
        indices, scores = index.top_k(queries, k)
        for expected, row, row_scores in zip(expected_scores, indices, scores):
            np.testing.assert_allclose(row_scores, np.sort(expected)[::-1][:k], rtol=1e-6, atol=1e-12)
            np.testing.assert_allclose(expected[row], row_scores, rtol=1e-6, atol=1e-12)
            # Every document scoring above the k-th is in; the rest are ties with the k-th.
            kth = row_scores[-1]
            assert set(np.flatnonzero(expected > kth + 1e-9 * abs(kth))) <= set(row.tolist())


def read_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def read_beir(folder, limit_queries=None, seed=0):
    corpus = read_jsonl(folder / "corpus.jsonl")
    queries = read_jsonl(folder / "queries.jsonl")
    if limit_queries is not None:
        rng = np.random.default_rng(seed)
        queries = [queries[i] for i in rng.choice(len(queries), limit_queries, replace=False)]
    docs = tokenize_many([(d.get("title") or "") + " " + d["text"] for d in corpus])
    return docs, tokenize_many([q["text"] for q in queries])


def test_scores_equal_rank_bm25_on_trec_dl19(datasets):
    docs, queries = read_beir(datasets / "trec-dl19")
    index, reference = BM25Index.build(docs), BM25Okapi(docs)
    assert len(queries) == 43
    assert_matches_rank_bm25(index, reference, queries, ks=(10, 100))


def test_scores_equal_rank_bm25_on_a_kuake_qtr_sample(datasets):
    # rank_bm25 scores in pure Python, ~70 ms a query over these 23,880 titles: 40 queries are
    # compared over the whole corpus (scores and top-10), 300 more over their top 100 and 200
    # random titles with rank_bm25's get_batch_scores (same formula, chosen documents only).
    docs, queries = read_beir(datasets / "kuake-qtr-train", limit_queries=340)
    index, reference = BM25Index.build(docs), BM25Okapi(docs)
    assert index.n_docs == 23880
    whole, sampled = queries[:40], queries[40:]
    assert_matches_rank_bm25(index, reference, whole)
    rng = np.random.default_rng(1)
    top_indices, _ = index.top_k(sampled, 100)
    for query, top in zip(sampled, top_indices):
        chosen = np.union1d(top, rng.choice(index.n_docs, 200, replace=False))
        expected = np.array(reference.get_batch_scores(query, chosen.tolist()))
        np.testing.assert_allclose(index.scores(query)[chosen], expected, rtol=1e-6, atol=1e-12)


SMALL = [
    ["red", "apple", "pie"],
    ["green", "apple"],
    [],
    ["apple", "apple", "banana", "split"],
    ["cherry", "pie", "pie"],
    ["apple", "tart"],
]


def test_repeated_unknown_and_negative_idf_terms_score_like_rank_bm25():
    index, reference = BM25Index.build(SMALL), BM25Okapi(SMALL)
    # "apple" is in 4 of 6 documents: negative idf, floored at epsilon * average idf.
    assert math.log(6 - 4 + 0.5) - math.log(4 + 0.5) < 0
    assert index.idf[index.vocabulary["apple"]] == pytest.approx(0.25 * reference.average_idf)
    queries = [["apple"], ["pie", "pie"], ["pie", "durian"], ["durian"], [], ["apple", "pie", "apple"]]
    assert_matches_rank_bm25(index, reference, queries, ks=(1, 3, 6))


def test_empty_query_and_unknown_terms_score_zero_everywhere():
    index = BM25Index.build(SMALL)
    assert not index.scores([]).any()
    assert not index.scores(["durian", "kiwi"]).any()
    indices, scores = index.top_k([[], ["durian"]], 3)
    assert indices.tolist() == [[0, 1, 2], [0, 1, 2]]
    assert not scores.any()


def test_empty_documents_score_zero_and_still_count_in_lengths():
    index = BM25Index.build(SMALL)
    assert index.scores(["pie"])[2] == 0
    assert index.avgdl == BM25Okapi(SMALL).avgdl


def test_fewer_matches_than_k_are_padded_with_zero_score_documents():
    index, reference = BM25Index.build(SMALL), BM25Okapi(SMALL)
    indices, scores = index.top_k([["cherry"]], 4)
    assert indices[0, 0] == 4 and scores[0, 0] == pytest.approx(reference.get_scores(["cherry"])[4])
    assert indices[0, 1:].tolist() == [0, 1, 2] and not scores[0, 1:].any()


def test_k_larger_than_the_corpus_is_capped():
    indices, scores = BM25Index.build(SMALL).top_k([["pie"]], 50)
    assert indices.shape == scores.shape == (1, len(SMALL))
    assert sorted(indices[0].tolist()) == list(range(len(SMALL)))


def test_single_document_corpus_matches_rank_bm25_including_its_negative_scores():
    docs = [["only", "one", "document", "one"]]
    index, reference = BM25Index.build(docs), BM25Okapi(docs)
    assert_matches_rank_bm25(index, reference, [["one"], ["only", "missing"], []], ks=(1,))
    assert index.scores(["one"])[0] < 0  # every idf is negative and so is the floor
    indices, scores = index.top_k([["one"]], 5)
    assert indices.tolist() == [[0]]


def test_negative_scores_rank_below_unmatched_documents():
    # Two documents: every term is in at least half, so weights are negative or zero.
    docs = [["a", "b"], ["a", "c"]]
    index, reference = BM25Index.build(docs), BM25Okapi(docs)
    assert_matches_rank_bm25(index, reference, [["a"], ["b"], ["b", "c"], ["a", "b"]], ks=(1, 2))


def test_an_all_empty_corpus_scores_zero_and_an_empty_one_is_refused():
    index = BM25Index.build([[], []])
    assert index.scores(["x"]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Index.build([])


def test_batches_mixing_rare_and_common_terms_agree_with_single_queries():
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(300)]
    weights = 1 / np.arange(1, 301)
    weights /= weights.sum()
    docs = [list(rng.choice(words, rng.integers(0, 30), p=weights)) for _ in range(400)]
    queries = [list(rng.choice(words, 4, p=weights)) for _ in range(60)] + [[w] for w in words[-20:]]
    index, reference = BM25Index.build(docs), BM25Okapi(docs)
    assert_matches_rank_bm25(index, reference, queries, ks=(1, 10, 50))


def test_save_and_load_round_trip(tmp_path):
    index = BM25Index.build(SMALL + [["pie", "crust"]], k1=1.2, b=0.5, epsilon=0.1)
    saved = index.save(tmp_path / "bm25" / "v3")
    for mmap in (True, False):
        loaded = BM25Index.load(saved, mmap=mmap)
        assert loaded.params == index.params and loaded.vocabulary == index.vocabulary
        for query in (["pie"], ["apple", "crust", "apple"], ["durian"]):
            np.testing.assert_array_equal(loaded.scores(query), index.scores(query))
        np.testing.assert_array_equal(loaded.top_k([["pie"]], 3)[0], index.top_k([["pie"]], 3)[0])
    # Saving again over an existing index replaces it.
    BM25Index.build([["x"]]).save(saved)
    assert BM25Index.load(saved).n_docs == 1


def test_loading_a_missing_index_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no BM25 index"):
        BM25Index.load(tmp_path / "nothing")


def test_ties_across_a_large_corpus_go_to_the_lowest_document_indices():
    docs = [["shared", "word"] for _ in range(2000)] + [["filler", f"u{i}"] for i in range(4000)]
    docs[1500] = ["shared", "shared", "word"]  # beats every tie on "shared", loses on "word"
    index = BM25Index.build(docs)
    indices, scores = index.top_k([["shared"], ["word"], ["missing"]], 10)
    assert indices[0].tolist() == [1500, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert indices[1].tolist() == list(range(10))
    assert indices[2].tolist() == list(range(10)) and not scores[2].any()
