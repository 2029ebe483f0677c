"""Candidate pairs with different grades inside each query, shared by the pairwise losses."""

from __future__ import annotations

from torch import Tensor

from ._inputs import candidate_weights


def graded_pairs(
    scores: Tensor, labels: Tensor, weights: Tensor | None, mask: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """For every (i, j) of one query with grade_i > grade_j, both real: the score difference
    ``s_i - s_j``, the pair's weight and a bool marking which (i, j) are such pairs, all three
    [n_queries, group_size, group_size].

    A pair weighs ``w_i * w_j`` with per-candidate weights -- an order is only as trustworthy as
    both judgments behind it (the chance both are right) -- and the query's weight with a
    per-query one."""
    differences = scores.unsqueeze(2) - scores.unsqueeze(1)
    is_pair = (labels.unsqueeze(2) > labels.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
    if weights is None or weights.dim() == 1:
        pair_weights = candidate_weights(weights, scores).unsqueeze(2).expand_as(differences)
    else:
        pair_weights = weights.unsqueeze(2) * weights.unsqueeze(1)
    return differences, pair_weights, is_pair
