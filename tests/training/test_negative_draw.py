"""A group's negatives: hardest first by retrieval rank, drawn anew each epoch from the seed, the
same for the same (seed, epoch, query), so a resumed run trains on the very same groups; and what
the export gives (soft labels, grade probabilities, weights) reaches the loss."""

from collections import Counter

import numpy as np
import pytest
import torch

from tests.training_loop.conftest import (
    make_tiny_model,
    synthetic_listwise,
    write_jsonl,
)
from training.batching import EncodedGroups, EpochDraw, training_groups
from training.config import TrainConfig
from training.data import QueryGroup, read_data_file
from training.trainer import TrainingCancelled, _micro_batch_loss, train

GROUP_SIZE = 4  # 2 positives + 2 negatives


def query(query_id="q", *, n_negatives=12, ranks=None, positives=(3, 2)):
    """A query with the given positives, then negatives n0, n1, ... graded 0 in file order;
    ``ranks`` gives each negative's retrieval rank (None: unranked)."""
    ranks = ranks if ranks is not None else [None] * n_negatives
    docs = [f"p{i}" for i in range(len(positives))] + [f"n{i}" for i in range(n_negatives)]
    return QueryGroup(query_id=query_id, query=f"query {query_id}", doc_ids=list(docs), docs=docs,
                      labels=[float(g) for g in positives] + [0.0] * n_negatives, weights=[1.0] * len(docs),
                      retrieval_ranks=[None] * len(positives) + list(ranks))


def negatives_of(group, draw=None):
    [selected], _ = training_groups([group], group_size=GROUP_SIZE, draw=draw)
    return [doc for doc in selected.docs if doc.startswith("n")]


def test_without_a_draw_the_negatives_are_the_best_ranked_and_unranked_ones_come_last():
    # n0..n3 unranked, n4..n7 ranked 7, 3, 9, 1
    group = query(n_negatives=8, ranks=[None, None, None, None, 7, 3, 9, 1])

    [selected], _ = training_groups([group], group_size=6)

    assert selected.docs == ["p0", "p1", "n7", "n5", "n4", "n6"]


def test_unranked_negatives_take_the_higher_grade_first_then_file_order():
    group = QueryGroup(query_id="q", query="q", doc_ids=list("abcde"), docs=list("abcde"),
                       labels=[3.0, 0.0, 1.0, 0.0, 1.0], weights=[1.0] * 5)

    [selected], _ = training_groups([group], group_size=3)

    assert selected.docs == ["a", "c", "e"]


def test_the_draw_differs_between_epochs_and_is_the_same_for_the_same_seed_and_epoch():
    group = query(ranks=list(range(1, 13)))

    by_epoch = [negatives_of(group, EpochDraw(seed=7, epoch=epoch)) for epoch in range(6)]

    assert len({tuple(drawn) for drawn in by_epoch}) > 1
    assert [negatives_of(group, EpochDraw(seed=7, epoch=epoch)) for epoch in range(6)] == by_epoch
    assert [negatives_of(group, EpochDraw(seed=8, epoch=epoch)) for epoch in range(6)] != by_epoch


def test_the_draw_depends_on_the_query_not_on_its_place_in_the_file():
    groups = [query("a", ranks=list(range(1, 13))), query("b", ranks=list(range(1, 13)))]
    draw = EpochDraw(seed=1, epoch=3)

    forward, _ = training_groups(groups, group_size=GROUP_SIZE, draw=draw)
    backward, _ = training_groups(groups[::-1], group_size=GROUP_SIZE, draw=draw)

    assert [g.docs for g in forward] == [g.docs for g in backward[::-1]]


def test_better_ranked_negatives_are_drawn_more_often_and_every_one_is_drawn_sometimes():
    # File order is the reverse of rank order: the draw must follow the rank, not the file.
    group = query(ranks=list(range(12, 0, -1)))
    counts = Counter(doc for epoch in range(400) for doc in negatives_of(group, EpochDraw(seed=0, epoch=epoch)))

    by_rank = [counts[f"n{12 - rank}"] for rank in range(1, 13)]  # how often rank 1, 2, ... was drawn
    assert by_rank[0] > by_rank[5] > by_rank[11] > 0
    assert by_rank[0] > 0.5 * 400


def test_positives_are_never_drawn_away_and_drawn_negatives_keep_hardest_first_order():
    group = query(ranks=list(range(1, 13)))
    for epoch in range(20):
        [selected], _ = training_groups([group], group_size=GROUP_SIZE, draw=EpochDraw(seed=3, epoch=epoch))
        assert selected.docs[:2] == ["p0", "p1"] and len(selected.docs) == GROUP_SIZE
        ranks = [int(doc[1:]) + 1 for doc in selected.docs[2:]]
        assert ranks == sorted(ranks)


def test_a_query_that_fits_its_group_is_the_same_every_epoch():
    group = query(n_negatives=2, ranks=[2, 1])

    drawn = {tuple(negatives_of(group, EpochDraw(seed=0, epoch=epoch))) for epoch in range(10)}

    assert drawn == {("n1", "n0")}


# --- through the trainer -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32-wide model gains nothing from threads on a shared machine
    yield make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))
    torch.set_num_threads(threads)


def ranked_export(path, *, seed=1, n_queries=24, candidates=10):
    """The synthetic task as an export writes it: retrieval ranks, soft labels, weights, grade probs."""
    lines = synthetic_listwise(n_queries, seed=seed, candidates=candidates)
    for line in lines:
        for rank, candidate in enumerate(line["candidates"], start=1):
            grade = candidate["label"]
            candidate["retrieval_rank"] = rank if rank % 4 else None
            candidate["soft_label"] = round(grade / 3 * 0.9 + 0.05, 6)
            candidate["weight"] = 0.6 if rank % 3 == 0 else 1.0
            probs = [0.05] * 4
            probs[grade] = 0.85
            candidate["grade_probs"] = probs
    return write_jsonl(path, lines)


FAST = dict(batch_size=4, group_size=5, max_length=32, learning_rate=1e-3, warmup_ratio=0.1)


def test_the_batch_hands_the_loss_the_exports_soft_labels_probabilities_and_weights(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    from training.scoring import load_cross_encoder

    data = read_data_file(ranked_export(tmp_path / "train.jsonl"))
    groups, _ = training_groups(data.groups, group_size=5, draw=EpochDraw(seed=0, epoch=0))
    encoded = EncodedGroups(AutoTokenizer.from_pretrained(tiny_model), groups, group_size=5, max_length=32)
    batch = encoded.batch([0, 1])
    seen = {}

    def spy_loss(scores, labels, *, weights, mask, soft_labels, grade_probs):
        seen.update(soft_labels=soft_labels, grade_probs=grade_probs, weights=weights, labels=labels)
        return scores.sum()

    model, _ = load_cross_encoder(tiny_model, device="cpu")
    _micro_batch_loss(model, spy_loss, batch, 5)

    for row, group in enumerate(groups[:2]):
        n = len(group.docs)
        assert seen["soft_labels"][row, :n].tolist() == pytest.approx(group.soft_labels)
        assert seen["weights"][row, :n].tolist() == pytest.approx(group.weights)
        assert seen["grade_probs"][row, :n].flatten().tolist() == pytest.approx(
            [p for probs in group.grade_probs for p in probs])
        # the soft label, not label / 3: what the pointwise BCE takes as its target
        assert seen["soft_labels"][row, :n].tolist() != pytest.approx([label / 3 for label in group.labels])


@pytest.mark.parametrize("loss, target", [("listwise", "expected-gain"), ("pointwise", "label")])
def test_a_run_with_drawn_negatives_learns_and_a_resumed_run_draws_the_same(tiny_model, tmp_path, loss, target):
    data = read_data_file(ranked_export(tmp_path / "train.jsonl"))
    dev = read_data_file(write_jsonl(tmp_path / "dev.jsonl", synthetic_listwise(12, seed=2)))
    config = TrainConfig(loss=loss, listwise_target=target, epochs=3, checkpoint_every=4, **FAST)
    straight = train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "a",
                     dev_groups=dev.groups)
    assert straight.metrics["fine_tuned"]["ndcg@10"] > straight.metrics["base"]["ndcg@10"]

    steps = []
    with pytest.raises(TrainingCancelled):
        train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "b",
              progress=lambda **kw: steps.append(kw["step"]), should_cancel=lambda: steps[-1] >= 10)
    resumed = train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "b")

    assert resumed.resumed_from_step == 8  # inside the second epoch: it must redraw that epoch's groups
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-4, atol=1e-6)
