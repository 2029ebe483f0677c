"""Listwise softmax cross-entropy (ListNet) against graded targets, each candidate weighted."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._inputs import (
    MAX_GRADE,
    candidate_weights,
    check_grade_probs,
    check_inputs,
    check_soft_labels,
)

TARGETS = ("label", "expected-gain")


class ListwiseSoftmaxCrossEntropyLoss(nn.Module):
    """ListNet's top-one cross-entropy between the target and the predicted distribution over
    each query's candidates.

    Cao et al., "Learning to Rank: From Pairwise Approach to Listwise Approach", ICML 2007.

    Inputs (``forward(scores, labels, weights=None, mask=None, *, soft_labels=None, grade_probs=None)``):
        scores       [n_queries, group_size]  the cross-encoder's logits, one per (query, candidate)
        labels       [n_queries, group_size]  grades in [0, 3]; fractional aggregated grades are fine
        weights      None, [n_queries], or [n_queries, group_size] (the export's per-candidate weight)
        mask         None or bool [n_queries, group_size], True = a real candidate, False = padding
        soft_labels  None or [n_queries, group_size] in [0, 1] (target "expected-gain" only)
        grade_probs  None or [n_queries, group_size, 4], each candidate's probabilities of grades
                     0..3 (target "expected-gain" only; None: the soft labels spread over the two
                     grades around them, training.losses._inputs.grade_probs_from_soft_labels)

    Target ``target="label"``: ``softmax(labels / temperature)`` over the query's real candidates,
    as sentence-transformers' ListNetLoss does at temperature 1. Chosen over ``labels / sum(labels)``
    because it is defined for a group whose grades are all 0 and keeps every grade step the same
    ratio apart; a lower temperature puts more of the mass on the best-graded candidates (grades 3
    vs 0 at temperature 1: e**3 ~ 20 to 1; at 0.5: e**6 ~ 403 to 1).
    ``target="expected-gain"``: each candidate's gain ``e**(grade / temperature)`` -- the label
    target's own -- in expectation over its grade probabilities, normalised over the query. A sure
    grade gives exactly the label target; a pair the annotators split between 3 and 0 gets mass
    between the two instead of all of a 3's.

    Weights: a candidate of weight w counts as w of a candidate -- in the target, its term of the
    cross-entropy is weighted by w, and in the prediction, its share of the softmax's denominator
    is (``softmax(scores + log w)``). So a doubtful candidate moves the scores less whichever way it
    pulls: up (its target mass) or down (its probability), and at weight 0 it is as if absent.
    A weight says how much a candidate counts, not what it should score: with free scores the
    optimum is the target whatever the weights, as in the pointwise losses; they decide where
    candidates compete for one model (the same document graded 3 by a doubtful judgment and 0 by a
    sure one ends low). Doubt about the grade itself is the "expected-gain" target's to express.
    Loss per query: ``-sum_i w_i * target_i * log_softmax(scores + log w)_i`` over real candidates
    (padding gets neither target mass nor probability); batch loss: the mean over queries. Weights
    of c everywhere give c times the unweighted loss; a per-query weight weighs each of its
    candidates alike.
    """

    def __init__(self, temperature: float = 1.0, max_grade: float = MAX_GRADE, target: str = "label") -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        self.temperature = float(temperature)
        self.max_grade = float(max_grade)
        self.target = target

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
        if self.target == "label":
            log_gain = labels / self.temperature
        else:
            soft_labels = check_soft_labels(name, soft_labels, labels, mask, max_grade=self.max_grade)
            probs = check_grade_probs(name, grade_probs, soft_labels, mask, max_grade=self.max_grade)
            grade_gain = torch.arange(probs.shape[2], device=probs.device) / self.temperature
            log_gain = torch.logsumexp(probs.log() + grade_gain, dim=2)  # log E[e^(grade / T)]
        target = torch.softmax(log_gain.masked_fill(~mask, float("-inf")), dim=1)

        w = candidate_weights(weights, scores)
        present = mask & (w > 0)
        # A query whose candidates all weigh 0 teaches nothing; 0 logits keep its row finite.
        logits = torch.where(present, scores + w.log(), float("-inf"))
        logits = logits.masked_fill(~present.any(dim=1, keepdim=True), 0.0)
        # masked_fill, not a product: 0 * -inf at padding would be NaN.
        log_probs = torch.log_softmax(logits, dim=1).masked_fill(~present, 0.0)
        per_query = -(w * target * log_probs).sum(dim=1)
        return per_query.sum() / scores.shape[0]

    def get_config_dict(self) -> dict:
        return {"temperature": self.temperature, "max_grade": self.max_grade, "target": self.target}
