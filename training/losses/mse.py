"""Pointwise mean squared error on soft labels."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._inputs import MAX_GRADE, candidate_weights, check_inputs, check_soft_labels

ACTIVATIONS = {"sigmoid": torch.sigmoid, "identity": lambda scores: scores}


class MeanSquaredErrorLoss(nn.Module):
    """Squared error between ``activation(score)`` and the soft label (the export's ``soft_label``;
    ``grade / max_grade`` when none is given).

    Regression of graded relevance, as in sentence-transformers' cross-encoder MSELoss used for
    distillation: Hofstaetter et al., "Improving Efficient Neural Ranking Models with
    Cross-Architecture Knowledge Distillation", arXiv:2010.02666, 2020.

    Inputs (``forward(scores, labels, weights=None, mask=None, *, soft_labels=None, grade_probs=None)``):
        scores       [n_queries, group_size]  logits
        labels       [n_queries, group_size]  grades in [0, 3]
        weights      None, [n_queries] (each candidate takes its query's) or [n_queries, group_size]
        mask         None or bool [n_queries, group_size], True = a real candidate
        soft_labels  None or [n_queries, group_size] in [0, 1]: the targets
        grade_probs  not used (the soft label is the expected grade they give)

    ``activation`` is "sigmoid" (default: the score is read as a probability, like the BCE loss)
    or "identity" (the raw score regresses the soft label). Loss: ``sum_i weight_i *
    (activation(score_i) - target_i)**2 / n_real_candidates``; weights of c everywhere give c
    times the unweighted mean.
    """

    def __init__(self, activation: str = "sigmoid", max_grade: float = MAX_GRADE) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
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
        errors = (ACTIVATIONS[self.activation](scores) - targets) ** 2
        weighted = candidate_weights(weights, scores) * errors
        return weighted.masked_fill(~mask, 0.0).sum() / mask.sum()

    def get_config_dict(self) -> dict:
        return {"activation": self.activation, "max_grade": self.max_grade}
