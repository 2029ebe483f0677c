"""RankNet / BPR pairwise logistic loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._inputs import MAX_GRADE
from ._pairs import pairwise_loss


class RankNetLoss(nn.Module):
    """``-log sigmoid(sigma * (s_i - s_j))`` for every pair of one query's candidates where i has
    the higher grade: the logistic probability that i ranks above j.

    Burges et al., "Learning to Rank using Gradient Descent", ICML 2005 (RankNet, target
    probability 1 for the better-graded candidate); with sigma = 1 this is Rendle et al.'s BPR,
    "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.

    Inputs (``forward(scores, labels, weights=None, mask=None, *, soft_labels=None, grade_probs=None)``):
        scores  [n_queries, group_size]  logits
        labels  [n_queries, group_size]  grades in [0, 3]; equal grades form no pair
        weights None, [n_queries] (the pair takes its query's weight) or [n_queries,
                group_size] (a pair weighs ``w_i * w_j``, the chance both grades are right)
        mask    None or bool [n_queries, group_size], True = a real candidate
        soft_labels, grade_probs: not used -- pairs are formed from the grades

    Loss: ``sum_pairs weight * softplus(-sigma * (s_i - s_j)) / n_pairs`` over all pairs in the
    batch (softplus(-x) = -log sigmoid(x), stable for large differences); 0, still attached to
    the graph, when no query has two different grades. Per-candidate weights of c everywhere
    give c**2 times the unweighted loss, per-query weights of c give c times it.
    """

    def __init__(self, sigma: float = 1.0, max_grade: float = MAX_GRADE) -> None:
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)
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
        # softplus(-x) = -log sigmoid(x), stable for large differences
        return pairwise_loss(type(self).__name__, scores, labels, weights, mask, max_grade=self.max_grade,
                             per_pair=lambda differences: F.softplus(-self.sigma * differences))

    def get_config_dict(self) -> dict:
        return {"sigma": self.sigma, "max_grade": self.max_grade}
