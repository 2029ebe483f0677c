"""What the export's soft labels, grade probabilities and per-pair weights do to each loss: a
doubtful pair moves the scores less than a sure one, pointwise losses learn the soft label, and
the listwise "expected-gain" target gives a pair the annotators split less of the target."""

from math import exp, log

import pytest
import torch

from training.losses import (
    LOSSES,
    BinaryCrossEntropyLoss,
    ListwiseSoftmaxCrossEntropyLoss,
    MeanSquaredErrorLoss,
    grade_probs_from_soft_labels,
)

SCORES = [[0.5, 0.1, -0.3, 0.2]]
GRADES = [[3.0, 0.0, 1.0, 2.0]]
SURE_THREE = [0.0, 0.0, 0.0, 1.0]


def score_gradient(loss_fn, weights, **targets):
    scores = torch.tensor(SCORES, requires_grad=True)
    loss_fn(scores, torch.tensor(GRADES), weights=torch.tensor([weights]), **targets).backward()
    return scores.grad[0]


def descend(loss_fn, grades, **kwargs):
    """Free scores at the loss's minimum (L-BFGS; the losses are convex in free scores): what the
    loss asks the model for."""
    scores = torch.zeros(1, len(grades[0]), requires_grad=True)
    optimizer = torch.optim.LBFGS([scores], max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(scores, torch.tensor(grades), **kwargs)
        loss.backward()
        return loss

    optimizer.step(closure)
    return scores.detach()[0]


# --- per-pair weights --------------------------------------------------------------------------


@pytest.mark.parametrize("loss_class", list(LOSSES.values()), ids=list(LOSSES))
@pytest.mark.parametrize("candidate", [0, 1], ids=["doubtful-positive", "doubtful-negative"])
def test_a_doubtful_pair_moves_its_score_less_than_a_sure_one(loss_class, candidate):
    sure = [1.0, 1.0, 1.0, 1.0]
    doubtful = list(sure)
    doubtful[candidate] = 0.1

    pull_sure = score_gradient(loss_class(), sure)[candidate].abs().item()
    pull_doubtful = score_gradient(loss_class(), doubtful)[candidate].abs().item()

    assert pull_sure > 0
    assert pull_doubtful < 0.5 * pull_sure


@pytest.mark.parametrize("loss_class", list(LOSSES.values()), ids=list(LOSSES))
@pytest.mark.parametrize(("weights", "side"), [((1.0, 1.0), 0), ((0.1, 1.0), -1), ((1.0, 0.1), 1)],
                         ids=["equally-sure", "doubtful-positive", "doubtful-negative"])
def test_when_two_judgments_of_one_document_conflict_the_sure_one_wins(loss_class, weights, side):
    """One document, one score, in two queries: graded 3 in the first, 0 in the second, against a
    fixed-score other candidate graded the opposite way. The weights decide which grade the score
    follows; equally sure judgments cancel out."""
    shared = torch.zeros(1, requires_grad=True)
    grades = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    weight_of = torch.tensor([[weights[0], 1.0], [weights[1], 1.0]])
    loss_fn = loss_class()
    optimizer = torch.optim.Adam([shared], lr=0.05)
    for _ in range(100):
        optimizer.zero_grad()
        scores = torch.stack([torch.cat([shared, torch.zeros(1)]), torch.cat([shared, torch.zeros(1)])])
        loss_fn(scores, grades, weights=weight_of).backward()
        optimizer.step()

    score = shared.item()
    if side == 0:
        assert score == pytest.approx(0.0, abs=1e-3)
    else:
        assert score * side > 0.2  # the doubtful positive loses: the score goes down, and vice versa


def test_listwise_a_weight_of_zero_is_as_if_the_candidate_were_absent():
    loss_fn = ListwiseSoftmaxCrossEntropyLoss()
    scores = torch.tensor([[2.0, 0.0, 1.0]], requires_grad=True)

    with_zero = loss_fn(scores, torch.tensor([[3.0, 0.0, 1.0]]), weights=torch.tensor([[1.0, 1.0, 0.0]]))
    with_zero.backward()
    without = loss_fn(torch.tensor([[2.0, 0.0]]), torch.tensor([[3.0, 0.0]]))
    # Only the target is renormalised differently: the absent candidate's target mass is dropped.
    z3, z2 = exp(3) + exp(0) + exp(1), exp(3) + exp(0)

    assert with_zero.item() == pytest.approx(without.item() * z2 / z3, abs=1e-6)
    assert scores.grad[0, 2].item() == 0.0


def test_listwise_a_query_whose_candidates_all_weigh_zero_adds_nothing_and_stays_finite():
    loss_fn = ListwiseSoftmaxCrossEntropyLoss()
    scores = torch.tensor([[2.0, 0.0], [1.0, 0.5]], requires_grad=True)
    grades = torch.tensor([[3.0, 0.0], [2.0, 0.0]])

    loss = loss_fn(scores, grades, weights=torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    loss.backward()

    assert loss.item() == pytest.approx(loss_fn(scores[1:], grades[1:]).item() / 2, abs=1e-6)
    assert scores.grad[0].tolist() == [0.0, 0.0]
    assert torch.isfinite(scores.grad).all()


# --- soft labels -------------------------------------------------------------------------------


def test_bce_target_is_the_soft_label_not_the_grade():
    # grade 2 but soft label 0.5 (the annotators split between 1 and 2); grade 0 but 0.1
    scores = torch.tensor([[1.0, -1.0]])
    soft = torch.tensor([[0.5, 0.1]])
    expected = (0.5 * log(1 + exp(-1)) + 0.5 * log(1 + exp(1))
                + 0.1 * log(1 + exp(1)) + 0.9 * log(1 + exp(-1))) / 2

    loss = BinaryCrossEntropyLoss()(scores, torch.tensor([[2.0, 0.0]]), soft_labels=soft)

    assert loss.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("loss_class", [BinaryCrossEntropyLoss, MeanSquaredErrorLoss])
def test_pointwise_losses_learn_the_soft_label(loss_class):
    soft = torch.tensor([[0.9, 0.2, 0.5]])

    scores = descend(loss_class(), [[3.0, 0.0, 2.0]], soft_labels=soft)

    assert torch.sigmoid(scores).tolist() == pytest.approx(soft[0].tolist(), abs=0.01)


def test_without_soft_labels_the_pointwise_target_is_the_grade_over_three():
    scores = torch.tensor([[1.0, -1.0, 0.3]])
    grades = torch.tensor([[3.0, 0.0, 1.0]])
    loss_fn = BinaryCrossEntropyLoss()

    assert loss_fn(scores, grades).item() == pytest.approx(
        loss_fn(scores, grades, soft_labels=grades / 3).item(), abs=1e-7)


# --- the listwise expected-gain target ---------------------------------------------------------


def test_expected_gain_equals_the_label_target_when_every_grade_is_sure():
    scores = torch.tensor([[2.0, 0.0, 1.0]])
    grades = torch.tensor([[3.0, 0.0, 1.0]])
    probs = torch.nn.functional.one_hot(grades.long(), 4).float()

    by_label = ListwiseSoftmaxCrossEntropyLoss()(scores, grades)
    by_gain = ListwiseSoftmaxCrossEntropyLoss(target="expected-gain")(scores, grades, grade_probs=probs)

    assert by_gain.item() == pytest.approx(by_label.item(), abs=1e-6)


def test_expected_gain_is_the_grades_gain_in_expectation_over_the_probabilities():
    # c0: 3 or 0 at even odds -> gain (e^3 + e^0) / 2; c1: a sure 2 -> e^2
    scores = torch.tensor([[0.4, -0.2]])
    probs = torch.tensor([[[0.5, 0.0, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0]]])
    gains = [(exp(3) + 1) / 2, exp(2)]
    target = [gain / sum(gains) for gain in gains]
    log_z = log(exp(0.4) + exp(-0.2))
    expected = -(target[0] * (0.4 - log_z) + target[1] * (-0.2 - log_z))

    loss = ListwiseSoftmaxCrossEntropyLoss(target="expected-gain")(scores, torch.tensor([[3.0, 2.0]]), grade_probs=probs)

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_expected_gain_gives_a_pair_the_annotators_split_less_of_the_target():
    grades = [[3.0, 0.0, 0.0]]
    loss_fn = ListwiseSoftmaxCrossEntropyLoss(target="expected-gain")
    sure = torch.tensor([[SURE_THREE, [1.0, 0, 0, 0], [1.0, 0, 0, 0]]])
    split = torch.tensor([[[0.7, 0.0, 0.0, 0.3], [1.0, 0, 0, 0], [1.0, 0, 0, 0]]])

    p_sure = torch.softmax(descend(loss_fn, grades, grade_probs=sure), dim=0)[0].item()
    p_split = torch.softmax(descend(loss_fn, grades, grade_probs=split), dim=0)[0].item()
    p_label = torch.softmax(descend(ListwiseSoftmaxCrossEntropyLoss(), grades, grade_probs=split), dim=0)[0].item()

    # The scores settle where the prediction is the target: gain e^3 against two sure 0s (gain 1),
    # or (0.7 + 0.3 e^3) when the annotators said 0 seven times in ten.
    split_gain = 0.7 + 0.3 * exp(3)
    assert p_sure == pytest.approx(exp(3) / (exp(3) + 2), abs=1e-3)
    assert p_split == pytest.approx(split_gain / (split_gain + 2), abs=1e-3)
    assert p_split < p_sure - 0.1
    assert p_label == pytest.approx(p_sure, abs=1e-3)  # the label target ignores the probabilities


def test_expected_gain_without_probabilities_spreads_the_soft_label_over_the_grades_around_it():
    soft = torch.tensor([[0.75, 0.0, 1 / 3]])  # expected grades 2.25, 0, 1
    spread = grade_probs_from_soft_labels(soft)
    loss_fn = ListwiseSoftmaxCrossEntropyLoss(target="expected-gain")
    scores, grades = torch.tensor([[1.0, 0.0, 0.5]]), torch.tensor([[2.0, 0.0, 1.0]])

    assert spread[0].flatten().tolist() == pytest.approx([0, 0, 0.75, 0.25, 1, 0, 0, 0, 0, 1, 0, 0], abs=1e-6)
    assert loss_fn(scores, grades, soft_labels=soft).item() == pytest.approx(
        loss_fn(scores, grades, grade_probs=spread).item(), abs=1e-6)


# --- bad targets -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"soft_labels": torch.tensor([[0.5, 1.5]])}, r"soft_labels must be in \[0, 1\], found 1.5 at \(0, 1\)"),
    ({"soft_labels": torch.tensor([[0.5]])}, r"soft_labels must be \[1, 2\], got \[1, 1\]"),
    ({"grade_probs": torch.tensor([[SURE_THREE, [0.5, 0.0, 0.0, 0.0]]])},
     r"grade_probs must be non-negative and sum to 1, found \[0.5, 0.0, 0.0, 0.0\] at \(0, 1\)"),
    ({"grade_probs": torch.tensor([[SURE_THREE[:3], SURE_THREE[:3]]])}, r"grade_probs must be \[1, 2, 4\], got \[1, 2, 3\]"),
])
def test_bad_targets_are_rejected_naming_the_loss_and_the_problem(kwargs, message):
    loss_fn = ListwiseSoftmaxCrossEntropyLoss(target="expected-gain")
    with pytest.raises(ValueError, match=f"ListwiseSoftmaxCrossEntropyLoss: {message}"):
        loss_fn(torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 0.0]]), **kwargs)


def test_bce_rejects_a_soft_label_outside_zero_to_one():
    with pytest.raises(ValueError, match=r"BinaryCrossEntropyLoss: soft_labels must be in \[0, 1\], found -0.2"):
        BinaryCrossEntropyLoss()(torch.tensor([[1.0]]), torch.tensor([[0.0]]), soft_labels=torch.tensor([[-0.2]]))
