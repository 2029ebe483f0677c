"""The ranking losses: hand-computed values on a tiny group, gradients, padding, weights, bad
input, and in-batch negatives.

The running example is one query with three candidates:
    scores = [2, 0, 1], grades = [3, 0, 1]
so the pairs with different grades (better first) are (c0, c1) with s0 - s1 = 2,
(c0, c2) with s0 - s2 = 1 and (c2, c1) with s2 - s1 = 1.
"""

from math import exp, log

import pytest
import torch

from training.losses import (
    LOSSES,
    BinaryCrossEntropyLoss,
    ListwiseSoftmaxCrossEntropyLoss,
    MeanSquaredErrorLoss,
    PairwiseHingeLoss,
    RankNetLoss,
    append_negatives,
    build_loss,
    pick_in_batch_negatives,
)

SCORES = [[2.0, 0.0, 1.0]]
GRADES = [[3, 0, 1]]


def sigmoid(x):
    return 1 / (1 + exp(-x))


def scores_tensor(values=SCORES):
    return torch.tensor(values, requires_grad=True)


def grades_tensor(values=GRADES):
    return torch.tensor(values, dtype=torch.float32)


def all_losses():
    return [loss_class() for loss_class in LOSSES.values()]


# --- hand-computed values ----------------------------------------------------------------------


def test_listwise_is_cross_entropy_between_softmax_of_grades_and_of_scores():
    # target_i = e^g_i / (e^3 + e^0 + e^1); log p_i = s_i - log(e^2 + e^0 + e^1)
    z_target = exp(3) + exp(0) + exp(1)
    target = [exp(3) / z_target, exp(0) / z_target, exp(1) / z_target]
    log_z = log(exp(2) + exp(0) + exp(1))
    expected = -(target[0] * (2 - log_z) + target[1] * (0 - log_z) + target[2] * (1 - log_z))

    loss = ListwiseSoftmaxCrossEntropyLoss()(scores_tensor(), grades_tensor())

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_listwise_temperature_divides_the_grades_before_the_softmax():
    # temperature 0.5: target = softmax([6, 0, 2])
    z_target = exp(6) + exp(0) + exp(2)
    log_z = log(exp(2) + exp(0) + exp(1))
    expected = -(
        exp(6) / z_target * (2 - log_z)
        + exp(0) / z_target * (0 - log_z)
        + exp(2) / z_target * (1 - log_z)
    )

    loss = ListwiseSoftmaxCrossEntropyLoss(temperature=0.5)(scores_tensor(), grades_tensor())

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_bce_uses_grade_over_three_as_the_soft_target():
    # targets [1, 0, 1/3]; bce(x, y) = y * log(1 + e^-x) + (1 - y) * log(1 + e^x)
    c0 = log(1 + exp(-2))
    c1 = log(1 + exp(0))
    c2 = 1 / 3 * log(1 + exp(-1)) + 2 / 3 * log(1 + exp(1))
    expected = (c0 + c1 + c2) / 3

    loss = BinaryCrossEntropyLoss()(scores_tensor(), grades_tensor())

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_mse_compares_sigmoid_of_score_with_grade_over_three():
    expected = ((sigmoid(2) - 1) ** 2 + (sigmoid(0) - 0) ** 2 + (sigmoid(1) - 1 / 3) ** 2) / 3

    loss = MeanSquaredErrorLoss()(scores_tensor(), grades_tensor())

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_mse_with_identity_activation_regresses_the_raw_score():
    expected = ((2 - 1) ** 2 + (0 - 0) ** 2 + (1 - 1 / 3) ** 2) / 3

    loss = MeanSquaredErrorLoss(activation="identity")(scores_tensor(), grades_tensor())

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_ranknet_is_mean_negative_log_sigmoid_of_pair_differences():
    # -log sigmoid(d) = log(1 + e^-d) for d = 2, 1, 1
    expected = (log(1 + exp(-2)) + log(1 + exp(-1)) + log(1 + exp(-1))) / 3

    loss = RankNetLoss()(scores_tensor(), grades_tensor())

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_ranknet_sigma_scales_the_differences():
    expected = (log(1 + exp(-4)) + 2 * log(1 + exp(-2))) / 3

    loss = RankNetLoss(sigma=2.0)(scores_tensor(), grades_tensor())

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_hinge_charges_pairs_won_by_less_than_the_margin():
    # margin 1.5: max(0, 1.5 - 2) = 0, max(0, 1.5 - 1) = 0.5 twice
    expected = (0 + 0.5 + 0.5) / 3

    loss = PairwiseHingeLoss(margin=1.5)(scores_tensor(), grades_tensor())

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_pairwise_losses_are_zero_but_differentiable_when_all_grades_are_equal():
    scores = scores_tensor()
    for loss_fn in (RankNetLoss(), PairwiseHingeLoss()):
        loss = loss_fn(scores, grades_tensor([[2, 2, 2]]))
        loss.backward()
        assert loss.item() == 0.0
        assert scores.grad.abs().sum().item() == 0.0


# --- gradients and padding ---------------------------------------------------------------------


@pytest.mark.parametrize("loss_fn", all_losses(), ids=list(LOSSES))
def test_gradients_flow_to_every_real_score(loss_fn):
    scores = torch.tensor([[0.5, 0.1, -0.3, 0.2]], requires_grad=True)
    loss = loss_fn(scores, grades_tensor([[3, 0, 1, 2]]))
    loss.backward()

    assert torch.isfinite(scores.grad).all()
    assert (scores.grad != 0).all()


@pytest.mark.parametrize("loss_fn", all_losses(), ids=list(LOSSES))
def test_padding_changes_neither_loss_nor_gradients_whatever_it_holds(loss_fn):
    plain = scores_tensor([[2.0, 0.0, 1.0], [0.5, -1.0, 0.0]])
    plain_grades = grades_tensor([[3, 0, 1], [2, 0, 0]])
    # The same two queries with garbage padding: a huge score, a NaN, grades out of range.
    padded = scores_tensor([[2.0, 1e4, 0.0, 1.0], [0.5, -1.0, float("nan"), 0.0]])
    padded_grades = grades_tensor([[3, 99, 0, 1], [2, 0, -7, 0]])
    mask = torch.tensor([[True, False, True, True], [True, True, False, True]])

    expected = loss_fn(plain, plain_grades)
    loss = loss_fn(padded, padded_grades, mask=mask)
    expected.backward()
    loss.backward()

    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert padded.grad[mask].tolist() == pytest.approx(plain.grad.flatten().tolist(), abs=1e-6)
    assert padded.grad[~mask].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("loss_fn", all_losses(), ids=list(LOSSES))
def test_gradient_descent_on_free_scores_ranks_candidates_by_grade(loss_fn):
    scores = torch.zeros(1, 4, requires_grad=True)
    grades = grades_tensor([[1, 3, 0, 2]])
    optimizer = torch.optim.SGD([scores], lr=0.5)
    first = loss_fn(scores, grades).item()
    for _ in range(200):
        optimizer.zero_grad()
        loss = loss_fn(scores, grades)
        loss.backward()
        optimizer.step()

    assert loss.item() < first
    assert torch.argsort(scores[0], descending=True).tolist() == [1, 3, 0, 2]


# --- weights -----------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_fn", all_losses(), ids=list(LOSSES))
def test_per_query_weight_scales_that_querys_share_of_the_loss(loss_fn):
    scores = scores_tensor([[2.0, 0.0, 1.0], [0.5, -1.0, 0.0]])
    grades = grades_tensor([[3, 0, 1], [2, 0, 1]])

    unweighted = loss_fn(scores, grades).item()
    scaled = loss_fn(scores, grades, weights=torch.tensor([0.25, 0.25])).item()

    assert scaled == pytest.approx(0.25 * unweighted, abs=1e-6)


def test_listwise_weighs_each_candidates_term_and_its_share_of_the_softmax():
    scores = scores_tensor([[2.0, 0.0, 1.0], [0.5, -1.0, 0.0]])
    grades = grades_tensor([[3, 0, 1], [2, 0, 1]])
    loss_fn = ListwiseSoftmaxCrossEntropyLoss()
    second = loss_fn(scores[1:], grades[1:]).item()
    # Query 0, weights [1, 0.5, 0]: c2 is absent from the softmax and its target mass is dropped;
    # c1 counts as half a candidate in the softmax, and its term of the cross-entropy by half.
    z_target = exp(3) + exp(0) + exp(1)
    log_z = log(1.0 * exp(2) + 0.5 * exp(0))
    first = -(1.0 * exp(3) / z_target * (2 + log(1.0) - log_z) + 0.5 * exp(0) / z_target * (0 + log(0.5) - log_z))
    # Query 1, weights 0.2 everywhere: 0.2 times its unweighted loss.
    weights = torch.tensor([[1.0, 0.5, 0.0], [0.2, 0.2, 0.2]])

    loss = loss_fn(scores, grades, weights=weights)

    assert loss.item() == pytest.approx((first + 0.2 * second) / 2, abs=1e-6)


def test_pointwise_weights_each_candidates_term():
    # bce terms of the running example, weighted [1, 0.5, 0] and averaged over 3 candidates
    c0 = log(1 + exp(-2))
    c1 = log(2)
    expected = (1.0 * c0 + 0.5 * c1 + 0.0) / 3

    loss = BinaryCrossEntropyLoss()(
        scores_tensor(), grades_tensor(), weights=torch.tensor([[1.0, 0.5, 0.0]])
    )

    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_pairwise_pair_weighs_the_product_of_its_candidates_weights():
    # weights [1, 0.5, 0.8]: pair (c0, c1) 0.5, (c0, c2) 0.8, (c2, c1) 0.4
    expected = (0.5 * log(1 + exp(-2)) + 0.8 * log(1 + exp(-1)) + 0.4 * log(1 + exp(-1))) / 3

    loss = RankNetLoss()(scores_tensor(), grades_tensor(), weights=torch.tensor([[1.0, 0.5, 0.8]]))

    assert loss.item() == pytest.approx(expected, abs=1e-6)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "grades", "kwargs", "message"),
    [
        ([[1.0, 2.0]], [[1, 2, 3]], {}, r"labels shape \(1, 3\) does not match scores shape"),
        ([1.0, 2.0], [1, 2], {}, r"scores must be \[n_queries, group_size\]"),
        ([[1.0, 2.0]], [[1, 4]], {}, r"labels must be grades in \[0, 3\], found 4.0 at \(0, 1\)"),
        ([[1.0, 2.0]], [[-1, 2]], {}, r"labels must be grades in \[0, 3\], found -1.0"),
        ([[1.0, 2.0]], [[float("nan"), 2]], {}, r"labels must be grades .* found nan"),
        ([[1.0, float("nan")]], [[1, 2]], {}, r"scores are NaN at \(0, 1\)"),
        ([[1.0, 2.0]], [[1, 2]], {"mask": torch.tensor([[1, 0]])}, "mask must be a bool tensor"),
        (
            [[1.0, 2.0], [0.0, 0.0]],
            [[1, 2], [0, 0]],
            {"mask": torch.tensor([[True, True], [False, False]])},
            "query 1 has no real candidate",
        ),
        ([[1.0, 2.0]], [[1, 2]], {"weights": torch.tensor([1.0, 1.0])}, "weights must be"),
        (
            [[1.0, 2.0]],
            [[1, 2]],
            {"weights": torch.tensor([[1.0, -0.5]])},
            r"weights must be finite and >= 0, found -0.5 at \(0, 1\)",
        ),
    ],
)
@pytest.mark.parametrize("loss_class", list(LOSSES.values()), ids=list(LOSSES))
def test_bad_input_is_rejected_naming_the_loss_and_the_problem(
    loss_class, scores, grades, kwargs, message
):
    with pytest.raises(ValueError, match=f"{loss_class.__name__}: {message}"):
        loss_class()(torch.tensor(scores), torch.tensor(grades, dtype=torch.float32), **kwargs)


def test_integer_scores_are_rejected():
    with pytest.raises(ValueError, match="scores must be floating point"):
        RankNetLoss()(torch.tensor([[1, 2]]), grades_tensor([[1, 2]]))


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        ListwiseSoftmaxCrossEntropyLoss(temperature=0)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        PairwiseHingeLoss(margin=-1)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        RankNetLoss(sigma=0)
    with pytest.raises(ValueError, match="activation must be one of"):
        MeanSquaredErrorLoss(activation="tanh")
    with pytest.raises(ValueError, match="unknown loss 'lambdarank'"):
        build_loss("lambdarank")
    with pytest.raises(ValueError, match="target must be one of label, expected-gain, got 'ndcg'"):
        ListwiseSoftmaxCrossEntropyLoss(target="ndcg")


def test_build_loss_passes_its_config_and_reports_it():
    loss = build_loss("listwise", temperature=0.5)

    assert isinstance(loss, ListwiseSoftmaxCrossEntropyLoss)
    assert loss.get_config_dict() == {"temperature": 0.5, "max_grade": 3.0, "target": "label"}


# --- in-batch negatives ------------------------------------------------------------------------


def test_in_batch_negatives_come_from_other_queries_never_the_querys_own_documents():
    doc_ids = [["a", "b"], ["c", "a"], ["d"]]

    picks = pick_in_batch_negatives(doc_ids, 5, generator=torch.Generator().manual_seed(0))

    borrowed = [sorted(doc_ids[q][p] for q, p in query_picks) for query_picks in picks]
    assert borrowed == [["c", "d"], ["b", "d"], ["a", "b", "c"]]  # "a" borrowed once
    for query, query_picks in enumerate(picks):
        assert all(other != query for other, _ in query_picks)


def test_in_batch_negatives_are_reproducible_with_a_seed():
    doc_ids = [[f"q{q}d{d}" for d in range(8)] for q in range(4)]

    first = pick_in_batch_negatives(doc_ids, 3, generator=torch.Generator().manual_seed(7))
    again = pick_in_batch_negatives(doc_ids, 3, generator=torch.Generator().manual_seed(7))

    assert first == again
    assert all(len(query_picks) == 3 for query_picks in first)


def test_appended_negatives_are_grade_zero_and_keep_the_listwise_query_weight():
    scores = scores_tensor()
    grades = grades_tensor()
    mask = torch.tensor([[True, True, False]])
    weights = torch.tensor([[0.9, 0.3, 0.0]])
    negative_scores = torch.tensor([[0.7, -0.2]], requires_grad=True)

    scores2, grades2, mask2, weights2 = append_negatives(
        scores, grades, mask, negative_scores, torch.tensor([[True, True]]), weights
    )
    loss = ListwiseSoftmaxCrossEntropyLoss()(scores2, grades2, weights2, mask2)
    loss.backward()

    assert grades2.tolist() == [[3, 0, 1, 0, 0]]
    assert mask2.tolist() == [[True, True, False, True, True]]
    assert weights2.flatten().tolist() == pytest.approx([0.9, 0.3, 0.0, 0.6, 0.6])
    assert (negative_scores.grad > 0).all()  # pushing a negative's score up raises the loss
