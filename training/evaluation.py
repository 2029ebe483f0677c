"""Rerank each query's candidates of a listwise file and score the ranking (training.metrics).

Rankers: a cross-encoder directory, BM25 (mining.text.bm25 over the file's documents -- every distinct
document of the file is the corpus, so idf has more than a handful of documents to count), or the
file's own order. All report ``{"queries", "ndcg@10", "mrr@10", "recall@10", "map"}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .data import QueryGroup
from .metrics import evaluate
from .scoring import DEFAULT_BATCH_SIZE, DEFAULT_MAX_LENGTH, score_lists

METRIC_KEYS = ("queries", "ndcg@10", "mrr@10", "recall@10", "map")


def metrics_for(groups: Sequence[QueryGroup], scores: Sequence[np.ndarray], *, relevance_threshold: float = 2) -> dict:
    """The five headline metrics of per-group scores (ties keep file order)."""
    return metrics_and_per_query(groups, scores, relevance_threshold=relevance_threshold)[0]


def per_query_ndcg(groups: Sequence[QueryGroup], scores: Sequence[np.ndarray], *,
                   relevance_threshold: float = 2) -> dict[str, float]:
    """Dev NDCG@10 per query id, for the promotion gate's paired test; a query without any grade
    above 0 has no NDCG and is left out (the gate refuses NaN)."""
    return metrics_and_per_query(groups, scores, relevance_threshold=relevance_threshold)[1]


def metrics_and_per_query(groups: Sequence[QueryGroup], scores: Sequence[np.ndarray], *,
                          relevance_threshold: float = 2) -> tuple[dict, dict[str, float]]:
    """Both of the above from one evaluation."""
    runs, qrels = {}, {}
    for group, group_scores in zip(groups, scores):
        runs[group.query_id] = {doc_id: float(s) for doc_id, s in zip(group.doc_ids, group_scores)}
        qrels[group.query_id] = dict(zip(group.doc_ids, map(float, group.labels)))
    result = evaluate(runs, qrels, k=10, relevance_threshold=relevance_threshold)
    per_query = {qid: values["ndcg@10"] for qid, values in result["per_query"].items()
                 if values["ndcg@10"] is not None}
    return {key: result[key] for key in METRIC_KEYS}, per_query


def file_order_scores(groups: Sequence[QueryGroup]) -> list[np.ndarray]:
    return [-np.arange(len(group), dtype=np.float64) for group in groups]


def bm25_scores(groups: Sequence[QueryGroup], *, method: str = "auto") -> list[np.ndarray]:
    from mining.text.bm25 import BM25Index
    from mining.text.tokenize import tokenize, tokenize_many

    position: dict[str, int] = {}
    for group in groups:
        for doc in group.docs:
            position.setdefault(doc, len(position))
    index = BM25Index.build(tokenize_many(position, method=method))
    scores = []
    for group in groups:
        all_scores = index.scores(tokenize(group.query, method=method))
        scores.append(all_scores[[position[doc] for doc in group.docs]])
    return scores


def model_scores(
    model, tokenizer, groups: Sequence[QueryGroup], *, max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[np.ndarray]:
    return score_lists(model, tokenizer, [(group.query, group.docs) for group in groups], max_length=max_length,
                       batch_size=batch_size)


def evaluate_model(model, tokenizer, groups, **kwargs) -> dict:
    return metrics_for(groups, model_scores(model, tokenizer, groups, **kwargs))
