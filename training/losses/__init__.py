"""Ranking losses over ``[n_queries, group_size]`` score matrices, one per file.

Every loss is an ``nn.Module`` called as ``loss(scores, labels, weights=None, mask=None, *,
soft_labels=None, grade_probs=None)`` with grades 0-3 as labels, the export's per-candidate
weights inside every term, and its soft labels (expected grade / 3) and grade probabilities
where the loss takes them (pointwise: soft labels as targets; listwise: grade probabilities for
its "expected-gain" target; pairwise losses form pairs from grades and use neither). Each checks
its inputs up front and reports its settings in ``get_config_dict()``. Unlike
sentence-transformers' losses they do not wrap the model: the trainer scores the pairs and hands
the loss a matrix, so batching stays in one place.
"""

from __future__ import annotations

from torch import nn

from ._inputs import grade_probs_from_soft_labels
from .bce import BinaryCrossEntropyLoss
from .hinge import PairwiseHingeLoss
from .in_batch import append_negatives, pick_in_batch_negatives
from .listwise import ListwiseSoftmaxCrossEntropyLoss
from .mse import MeanSquaredErrorLoss
from .ranknet import RankNetLoss

# Names for `train_reranker --loss`; the three families default to the first of each.
LOSSES: dict[str, type[nn.Module]] = {
    "listwise": ListwiseSoftmaxCrossEntropyLoss,
    "pointwise": BinaryCrossEntropyLoss,
    "pointwise-mse": MeanSquaredErrorLoss,
    "pairwise": RankNetLoss,
    "pairwise-hinge": PairwiseHingeLoss,
}


def build_loss(name: str, **config) -> nn.Module:
    """The loss registered under ``name``, built with ``config`` (e.g. ``temperature=0.5``)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name](**config)


__all__ = [
    "LOSSES",
    "BinaryCrossEntropyLoss",
    "ListwiseSoftmaxCrossEntropyLoss",
    "MeanSquaredErrorLoss",
    "PairwiseHingeLoss",
    "RankNetLoss",
    "append_negatives",
    "build_loss",
    "grade_probs_from_soft_labels",
    "pick_in_batch_negatives",
]
