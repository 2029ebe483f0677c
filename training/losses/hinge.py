"""Pairwise hinge (margin ranking) loss."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._inputs import MAX_GRADE
from ._pairs import pairwise_loss


class PairwiseHingeLoss(nn.Module):
    """``max(0, margin - (s_i - s_j))`` for every pair of one query's candidates where i has the
    higher grade: the better candidate must win by at least ``margin``.

    Ranking SVM: Herbrich et al., "Large Margin Rank Boundaries for Ordinal Regression", 2000;
    Joachims, "Optimizing Search Engines using Clickthrough Data", KDD 2002.

    Inputs (``forward(scores, labels, weights=None, mask=None, *, soft_labels=None, grade_probs=None)``):
        scores  [n_queries, group_size]  logits
        labels  [n_queries, group_size]  grades in [0, 3]; equal grades form no pair
        weights None, [n_queries] (the pair takes its query's weight) or [n_queries,
                group_size] (a pair weighs ``w_i * w_j``, the chance both grades are right)
        mask    None or bool [n_queries, group_size], True = a real candidate
        soft_labels, grade_probs: not used -- pairs are formed from the grades

    Loss: ``sum_pairs weight * hinge / n_pairs`` over all pairs in the batch (0, still attached to
    the graph, when no query has two different grades). Per-candidate weights of c everywhere
    give c**2 times the unweighted loss, per-query weights of c give c times it.
    """

    def __init__(self, margin: float = 1.0, max_grade: float = MAX_GRADE) -> None:
        super().__init__()
        if not margin >= 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = float(margin)
        self.max_grade = float(max_grade)

    def forward(
        self,
        scores: Tensor,
        labels: Tensor,
        weights: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        soft_labels: Tensor | None = None,
        grade_probs: Tensor | None = None,
    ) -> Tensor:
        return pairwise_loss(type(self).__name__, scores, labels, weights, mask, max_grade=self.max_grade,
                             per_pair=lambda differences: torch.relu(self.margin - differences))

    def get_config_dict(self) -> dict:
        return {"margin": self.margin, "max_grade": self.max_grade}
