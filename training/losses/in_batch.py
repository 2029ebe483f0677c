"""In-batch negatives for the listwise loss: each query borrows other queries' candidates.

A cross-encoder scores (query, document) pairs, so borrowed negatives cost extra forward passes:
``pick_in_batch_negatives`` chooses which documents each query borrows (before scoring), the
trainer scores ``(query q, borrowed document)`` pairs, and ``append_negatives`` adds those scores
to the group as grade-0 candidates. A document judged for another query is almost surely not
relevant to this one -- the usual in-batch assumption (Karpukhin et al., "Dense Passage
Retrieval for Open-Domain Question Answering", EMNLP 2020).
"""

from __future__ import annotations

import torch
from torch import Tensor


def pick_in_batch_negatives(
    doc_ids: list[list[str]], n_negatives: int, *, generator: torch.Generator | None = None
) -> list[list[tuple[int, int]]]:
    """For each query, ``n_negatives`` (query index, candidate index) positions of other queries'
    candidates, uniformly at random without replacement, never a document in the query's own
    group. Fewer when the batch has fewer such documents. Deterministic for a seeded generator.
    """
    if n_negatives < 0:
        raise ValueError(f"n_negatives must be >= 0, got {n_negatives}")
    picks = []
    for query, own in enumerate(doc_ids):
        pool, seen = [], set(own)
        for other, docs in enumerate(doc_ids):
            for position, doc_id in enumerate(docs):
                # Skip the query's own documents, and borrow a document shared by several
                # other groups once.
                if other != query and doc_id not in seen:
                    seen.add(doc_id)
                    pool.append((other, position))
        order = torch.randperm(len(pool), generator=generator)[:n_negatives]
        picks.append([pool[i] for i in order.tolist()])
    return picks


def append_negatives(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor,
    negative_scores: Tensor,
    negative_mask: Tensor,
    weights: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Concatenate borrowed negatives ([n_queries, n_negatives] scores and mask) after each
    group as grade-0 candidates. Per-candidate weights give each borrowed negative the mean
    weight of the query's own real candidates: its grade 0 is an assumption, not a judgment, so it
    is trusted as much as the query's judgments are on average, not as a sure one; per-query
    weights stay as they are. The trainer gives the borrowed negatives the soft label and grade
    probabilities of a sure grade 0."""
    if negative_scores.shape != negative_mask.shape or negative_scores.shape[0] != scores.shape[0]:
        raise ValueError(
            f"negative_scores {tuple(negative_scores.shape)} and negative_mask "
            f"{tuple(negative_mask.shape)} must both be [n_queries={scores.shape[0]}, n_negatives]"
        )
    scores = torch.cat([scores, negative_scores.to(scores.dtype)], dim=1)
    labels = torch.cat([labels, torch.zeros_like(negative_scores, dtype=labels.dtype)], dim=1)
    if weights is not None and weights.dim() == 2:
        real = mask.to(weights.dtype)
        mean = (weights * real).sum(dim=1, keepdim=True) / real.sum(dim=1, keepdim=True)
        weights = torch.cat([weights, mean.expand(-1, negative_scores.shape[1])], dim=1)
    mask = torch.cat([mask, negative_mask], dim=1)
    return scores, labels, mask, weights
