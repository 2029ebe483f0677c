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


def query_weights(weights: Tensor | None, mask: Tensor) -> Tensor:
    """Per-query weights, [n_queries]: per-candidate weights become the mean over the query's
    real candidates; no weights means 1."""
    if weights is None:
        return torch.ones(mask.shape[0], device=mask.device)
    if weights.dim() == 1:
        return weights
    real = mask.float()
    return (weights * real).sum(dim=1) / real.sum(dim=1)


def zero_loss(scores: Tensor) -> Tensor:
    """A 0 that stays attached to the graph, for a batch with nothing to learn from."""
    return scores.sum() * 0.0


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
