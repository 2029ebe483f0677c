"""Rescoring a fused pool with the collection's promoted reranker: the one place mining uses
training (the feedback loop: each promotion changes which candidates the next round mines)."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from training.registry import promoted_version
from training.rerank import NoPromotedModel, rerank

logger = logging.getLogger(__name__)

_RESCORE_BATCH = 1000  # documents per reranker call (training.rerank's MAX_DOCUMENTS)


def promoted_reranker(collection):
    """The collection's promoted ModelVersion, or None."""
    return promoted_version(collection=collection)


def rescore(collection, query_text: str, doc_texts: Sequence[str]) -> list[float] | None:
    """Scores of (query, doc) pairs by the collection's promoted reranker; None when there is none.

    `rerank(query=, documents=, collection=)` answers {"scores": [...]} in input order, or raises
    NoPromotedModel (none promoted, or promoted and gone since).
    """
    if not doc_texts:
        return []
    # Only a promoted model guards: before any run the rerank service may answer with the zero-shot
    # base or BM25, which the false-negative guard has no use for.
    if promoted_version(collection=collection) is None:
        logger.info("no rescoring for %s: no reranker is promoted", collection)
        return None
    scores: list[float] = []
    try:
        for start in range(0, len(doc_texts), _RESCORE_BATCH):
            batch = list(doc_texts[start : start + _RESCORE_BATCH])
            scores.extend(float(s) for s in rerank(query=query_text, documents=batch, collection=collection)["scores"])
    except NoPromotedModel as exc:
        logger.info("no rescoring for %s: %s", collection, exc)
        return None
    if len(scores) != len(doc_texts):
        raise ValueError(f"the reranker returned {len(scores)} scores for {len(doc_texts)} documents")
    return scores
