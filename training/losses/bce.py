"""Pointwise binary cross-entropy on soft labels."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._inputs import MAX_GRADE, candidate_weights, check_inputs


class BinaryCrossEntropyLoss(nn.Module):
    """Binary cross-entropy between ``sigmoid(score)`` and the soft label ``grade / max_grade``,
    one term per candidate (with logits, so it is stable for large scores).

    The pointwise objective of monoBERT: Nogueira and Cho, "Passage Re-ranking with BERT",
    arXiv:1901.04085, 2019; soft targets as in knowledge distillation (Hinton et al., 2015).

    Inputs (``forward(scores, labels, weights=None, mask=None)``):
        scores  [n_queries, group_size]  logits
        labels  [n_queries, group_size]  grades in [0, 3]; the export's ``soft_label`` times 3
                                         gives the same target as its fractional grade
        weights None, [n_queries] (each candidate takes its query's) or [n_queries, group_size]
        mask    None or bool [n_queries, group_size], True = a real candidate

    Loss: ``sum_i weight_i * bce_i / n_real_candidates`` -- a weighted sum over real candidates
    divided by their number, so weights of c everywhere give c times the unweighted mean.
    """

    def __init__(self, max_grade: float = MAX_GRADE) -> None:
        super().__init__()
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
        per_candidate = F.binary_cross_entropy_with_logits(
            scores, labels / self.max_grade, reduction="none"
        )
        weighted = candidate_weights(weights, scores) * per_candidate
        return weighted.masked_fill(~mask, 0.0).sum() / mask.sum()

    def get_config_dict(self) -> dict:
        return {"max_grade": self.max_grade}
