"""Listwise softmax cross-entropy (ListNet) against graded targets."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._inputs import MAX_GRADE, check_inputs, query_weights


class ListwiseSoftmaxCrossEntropyLoss(nn.Module):
    """ListNet's top-one cross-entropy between the target and the predicted distribution over
    each query's candidates.

    Cao et al., "Learning to Rank: From Pairwise Approach to Listwise Approach", ICML 2007.

    Inputs (``forward(scores, labels, weights=None, mask=None)``):
        scores  [n_queries, group_size]  the cross-encoder's logits, one per (query, candidate)
        labels  [n_queries, group_size]  grades in [0, 3]; fractional aggregated grades are fine
        weights None, [n_queries], or [n_queries, group_size] (the export's per-candidate weight)
        mask    None or bool [n_queries, group_size], True = a real candidate, False = padding

    Target: ``softmax(labels / temperature)`` over the query's real candidates, as
    sentence-transformers' ListNetLoss does at temperature 1. Chosen over ``labels / sum(labels)``
    because it is defined for a group whose grades are all 0 and keeps every grade step the same
    ratio apart; a lower temperature puts more of the mass on the best-graded candidates
    (grades 3 vs 0 at temperature 1: e**3 ~ 20 to 1; at 0.5: e**6 ~ 403 to 1).

    Loss per query: ``-sum_i target_i * log_softmax(scores)_i`` over real candidates (padding gets
    neither target mass nor probability). Weights: per-candidate weights are averaged over the
    query's real candidates into one weight per query -- how much the whole list is trusted;
    a per-query weight is used as is. The batch loss is ``sum_q weight_q * loss_q / n_queries``,
    so weights of c everywhere give c times the unweighted loss.
    """

    def __init__(self, temperature: float = 1.0, max_grade: float = MAX_GRADE) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.max_grade = float(max_grade)

    def forward(
        self,
        scores: Tensor,
        labels: Tensor,
        weights: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        scores, labels, weights, mask = check_inputs(
            type(self).__name__, scores, labels, weights, mask, max_grade=self.max_grade
        )
        target = torch.softmax((labels / self.temperature).masked_fill(~mask, float("-inf")), dim=1)
        log_probs = torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        # masked_fill, not a product: 0 * -inf at padding would be NaN.
        per_query = -(target * log_probs.masked_fill(~mask, 0.0)).sum(dim=1)
        return (query_weights(weights, mask) * per_query).sum() / scores.shape[0]

    def get_config_dict(self) -> dict:
        return {"temperature": self.temperature, "max_grade": self.max_grade}
