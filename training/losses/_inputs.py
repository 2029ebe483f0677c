"""Shared up-front checks for the ranking losses, so a bad batch fails with a message naming
what is wrong instead of a NaN loss several steps later."""

from __future__ import annotations

import torch
from torch import Tensor

from annotate.grades import GRADE_MAX

MAX_GRADE = float(GRADE_MAX)


def check_inputs(
    loss_name: str,
    scores: Tensor,
    labels: Tensor,
    weights: Tensor | None,
    mask: Tensor | None,
    *,
    max_grade: float = MAX_GRADE,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """Validate one batch and return (scores, labels, weights, mask) as float32/bool tensors.

    scores: [n_queries, group_size] model logits; labels: grades in [0, max_grade], same shape;
    weights: None, [n_queries] or [n_queries, group_size], finite and >= 0; mask: None (all
    real) or bool, same shape, True = a real candidate, at least one per query. Values at
    padded positions are ignored, whatever they hold.
    """
    if not isinstance(scores, Tensor) or not isinstance(labels, Tensor):
        raise TypeError(f"{loss_name}: scores and labels must be torch tensors")
    if scores.dim() != 2:
        raise ValueError(
            f"{loss_name}: scores must be [n_queries, group_size], got shape {tuple(scores.shape)}"
        )
    if not scores.is_floating_point():
        raise ValueError(f"{loss_name}: scores must be floating point, got {scores.dtype}")
    if labels.shape != scores.shape:
        raise ValueError(
            f"{loss_name}: labels shape {tuple(labels.shape)} does not match scores shape "
            f"{tuple(scores.shape)}"
        )
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    else:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise ValueError(f"{loss_name}: mask must be a bool tensor (True = a real candidate)")
        if mask.shape != scores.shape:
            raise ValueError(
                f"{loss_name}: mask shape {tuple(mask.shape)} does not match scores shape "
                f"{tuple(scores.shape)}"
            )
    empty = ~mask.any(dim=1)
    if empty.any():
        raise ValueError(f"{loss_name}: query {_first(empty)} has no real candidate in mask")

    scores = scores.float()  # bf16 logits under autocast: the loss itself runs in float32
    labels = labels.to(scores.device, torch.float32)
    bad = mask & torch.isnan(scores)
    if bad.any():
        raise ValueError(f"{loss_name}: scores are NaN at {_first(bad)}")
    bad = mask & ~((labels >= 0) & (labels <= max_grade))  # also catches NaN
    if bad.any():
        at = _first(bad)
        raise ValueError(
            f"{loss_name}: labels must be grades in [0, {max_grade:g}], found "
            f"{labels[at].item()} at {at}"
        )
    if weights is not None:
        weights = _check_weights(loss_name, weights, scores, mask)
        if weights.dim() == 2:
            weights = weights.masked_fill(~mask, 0.0)
    # Neutral values at padding: a NaN there would otherwise reach the gradient as 0 * NaN.
    return scores.masked_fill(~mask, 0.0), labels.masked_fill(~mask, 0.0), weights, mask


def candidate_weights(weights: Tensor | None, scores: Tensor) -> Tensor:
    """Per-candidate weights, [n_queries, group_size]: a per-query weight applies to each of the
    query's candidates; no weights means 1 everywhere."""
    if weights is None:
        return torch.ones_like(scores)
    return weights.unsqueeze(1).expand_as(scores) if weights.dim() == 1 else weights


def check_soft_labels(loss_name: str, soft_labels: Tensor | None, labels: Tensor, mask: Tensor, *,
                      max_grade: float = MAX_GRADE) -> Tensor:
    """The soft labels in [0, 1], [n_queries, group_size] (0 at padding); None means each grade
    / max_grade, the target the losses used before the export gave soft labels."""
    if soft_labels is None:
        return labels / max_grade
    _check_shape(loss_name, "soft_labels", soft_labels, labels.shape)
    soft_labels = soft_labels.to(labels.device, torch.float32)
    bad = mask & ~((soft_labels >= 0) & (soft_labels <= 1))  # also catches NaN
    if bad.any():
        at = _first(bad)
        raise ValueError(f"{loss_name}: soft_labels must be in [0, 1], found {soft_labels[at].item()} at {at}")
    return soft_labels.masked_fill(~mask, 0.0)


def check_grade_probs(loss_name: str, grade_probs: Tensor | None, soft_labels: Tensor, mask: Tensor, *,
                      max_grade: float = MAX_GRADE) -> Tensor:
    """Each candidate's probabilities of grades 0..max_grade, [n_queries, group_size, n_grades];
    None means the soft labels spread over grades (grade_probs_from_soft_labels). Padding gets
    grade 0 for sure."""
    n_grades = int(max_grade) + 1
    if grade_probs is None:
        return grade_probs_from_soft_labels(soft_labels.masked_fill(~mask, 0.0), max_grade=max_grade)
    _check_shape(loss_name, "grade_probs", grade_probs, (*soft_labels.shape, n_grades))
    grade_probs = grade_probs.to(soft_labels.device, torch.float32)
    sums = grade_probs.sum(dim=2)
    bad = mask & ~((grade_probs >= 0).all(dim=2) & ((sums - 1).abs() <= 1e-4))  # also catches NaN
    if bad.any():
        at = _first(bad)
        raise ValueError(f"{loss_name}: grade_probs must be non-negative and sum to 1, found "
                         f"{grade_probs[at].tolist()} at {at}")
    certain_zero = torch.zeros(n_grades, device=grade_probs.device)
    certain_zero[0] = 1.0
    return torch.where(mask.unsqueeze(2), grade_probs, certain_zero)


def grade_probs_from_soft_labels(soft_labels: Tensor, *, max_grade: float = MAX_GRADE) -> Tensor:
    """A soft label as probabilities of grades: its expected grade ``soft_label * max_grade`` split
    between the two grades around it (2.25 -> 0.75 on grade 2, 0.25 on grade 3) -- the least spread
    distribution with that mean; a whole grade is certain."""
    grade = (soft_labels * max_grade).clamp(0, max_grade)
    low = grade.floor().clamp(max=max_grade - 1)
    upper_share = grade - low
    n_grades = int(max_grade) + 1
    probs = torch.zeros(*grade.shape, n_grades, device=grade.device)
    probs.scatter_(-1, low.long().unsqueeze(-1), (1 - upper_share).unsqueeze(-1))
    probs.scatter_(-1, (low.long() + 1).unsqueeze(-1), upper_share.unsqueeze(-1))
    return probs


def zero_loss(scores: Tensor) -> Tensor:
    """A 0 that stays attached to the graph, for a batch with nothing to learn from."""
    return scores.sum() * 0.0


def _check_shape(loss_name: str, name: str, value, shape) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{loss_name}: {name} must be a torch tensor or None")
    if value.shape != torch.Size(shape):
        raise ValueError(f"{loss_name}: {name} must be {list(shape)}, got {list(value.shape)}")


def _check_weights(loss_name: str, weights, scores: Tensor, mask: Tensor) -> Tensor:
    if not isinstance(weights, Tensor):
        raise TypeError(f"{loss_name}: weights must be a torch tensor or None")
    n_queries = scores.shape[0]
    if weights.shape not in (torch.Size([n_queries]), scores.shape):
        raise ValueError(
            f"{loss_name}: weights must be [n_queries] = [{n_queries}] or [n_queries, group_size]"
            f" = {list(scores.shape)}, got {list(weights.shape)}"
        )
    weights = weights.to(scores.device, torch.float32)
    real = mask if weights.dim() == 2 else torch.ones_like(weights, dtype=torch.bool)
    bad = real & ~(torch.isfinite(weights) & (weights >= 0))
    if bad.any():
        at = _first(bad)
        raise ValueError(
            f"{loss_name}: weights must be finite and >= 0, found {weights[at].item()} at {at}"
        )
    return weights


def _first(flags: Tensor) -> int | tuple[int, ...]:
    """Index of the first flagged entry: an int for a vector, a tuple for a matrix."""
    index = tuple(int(i) for i in flags.nonzero()[0])
    return index[0] if len(index) == 1 else index
