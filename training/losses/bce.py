"""Pointwise binary cross-entropy on soft labels."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._inputs import MAX_GRADE, candidate_weights, check_inputs, check_soft_labels


class BinaryCrossEntropyLoss(nn.Module):
    """Binary cross-entropy between ``sigmoid(score)`` and the soft label (the export's
    ``soft_label``, its expected grade / 3; ``grade / max_grade`` when none is given), one term per
    candidate (with logits, so it is stable for large scores).

    The pointwise objective of monoBERT: Nogueira and Cho, "Passage Re-ranking with BERT",
    arXiv:1901.04085, 2019; soft targets as in knowledge distillation (Hinton et al., 2015).

    Inputs (``forward(scores, labels, weights=None, mask=None, *, soft_labels=None, grade_probs=None)``):
        scores       [n_queries, group_size]  logits
        labels       [n_queries, group_size]  grades in [0, 3]
        weights      None, [n_queries] (each candidate takes its query's) or [n_queries, group_size]
        mask         None or bool [n_queries, group_size], True = a real candidate
        soft_labels  None or [n_queries, group_size] in [0, 1]: the targets
        grade_probs  not used (the soft label is the expected grade they give)

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
        *,
        soft_labels: Tensor | None = None,
        grade_probs: Tensor | None = None,
    ) -> Tensor:
        name = type(self).__name__
        scores, labels, weights, mask = check_inputs(name, scores, labels, weights, mask, max_grade=self.max_grade)
        targets = check_soft_labels(name, soft_labels, labels, mask, max_grade=self.max_grade)
        per_candidate = F.binary_cross_entropy_with_logits(scores, targets, reduction="none")
        weighted = candidate_weights(weights, scores) * per_candidate
        return weighted.masked_fill(~mask, 0.0).sum() / mask.sum()

    def get_config_dict(self) -> dict:
        return {"max_grade": self.max_grade}
