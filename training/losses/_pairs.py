"""Candidate pairs with different grades inside each query: the body every pairwise loss shares."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ._inputs import candidate_weights, check_inputs, zero_loss


def pairwise_loss(
    loss_name: str, scores: Tensor, labels: Tensor, weights: Tensor | None, mask: Tensor | None, *,
    max_grade: float, per_pair: Callable[[Tensor], Tensor],
) -> Tensor:
    """``sum_pairs weight * per_pair(s_i - s_j) / n_pairs`` over every pair of one query's candidates
    where i has the higher grade (graded_pairs), after the inputs are checked; 0, still attached to
    the graph, when no query has two different grades."""
    scores, labels, weights, mask = check_inputs(loss_name, scores, labels, weights, mask, max_grade=max_grade)
    differences, pair_weights, is_pair = graded_pairs(scores, labels, weights, mask)
    n_pairs = is_pair.sum()
    if n_pairs == 0:
        return zero_loss(scores)
    return (pair_weights * per_pair(differences)).masked_fill(~is_pair, 0.0).sum() / n_pairs


def graded_pairs(
    scores: Tensor, labels: Tensor, weights: Tensor | None, mask: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """For every (i, j) of one query with grade_i > grade_j, both real: the score difference
    ``s_i - s_j``, the pair's weight and a bool marking which (i, j) are such pairs, all three
    [n_queries, group_size, group_size].

    A pair weighs ``w_i * w_j`` with per-candidate weights: the export's weight is the chance a
    label is right, and an order is right when both labels are -- the product, for judgments made
    independently. ``min(w_i, w_j)`` would trust a pair of two doubtful labels (0.5, 0.5) as much
    as one doubtful and one sure (0.5, 1), though the first is wrong more often. A pair takes
    the query's weight with a per-query one."""
    differences = scores.unsqueeze(2) - scores.unsqueeze(1)
    is_pair = (labels.unsqueeze(2) > labels.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
    if weights is None or weights.dim() == 1:
        pair_weights = candidate_weights(weights, scores).unsqueeze(2).expand_as(differences)
    else:
        pair_weights = weights.unsqueeze(2) * weights.unsqueeze(1)
    return differences, pair_weights, is_pair
