"""The bi-encoder trainer: it learns the synthetic task, its output loads in sentence-transformers
and here alike, distillation follows the teacher, bad input is refused by name, runs repeat.

The synthetic task (tests/training_loop/conftest.py): a document's grade is written into it by a
marker word (``best`` 3, ``good`` 2, ``meh`` 1) among random filler words.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from tests.training_loop.conftest import (
    make_tiny_model,
    synthetic_listwise,
    write_jsonl,
)
from training.bi_encoder import TrainingCancelled, train_bi_encoder
from training.config import TrainConfig
from training.data import QueryGroup, read_data_file
from training.encoders import BiEncoder, EncodeStats
from training.evaluation import metrics_for
from training.rankers import BiEncoderRanker, model_kind, read_ranker_card

FAST = dict(epochs=4, batch_size=4, group_size=6, max_length=32, learning_rate=1e-3)
# The teacher of the distillation tests prefers documents holding many of these filler words: a
# signal the labels do not carry.
TEACHER_WORDS = {f"w{i}" for i in range(8)}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> tuple[list[QueryGroup], list[QueryGroup]]:
    root = tmp_path_factory.mktemp("task")
    train = read_data_file(write_jsonl(root / "train.jsonl", synthetic_listwise(48, seed=1))).groups
    dev = read_data_file(write_jsonl(root / "dev.jsonl", synthetic_listwise(16, seed=2))).groups
    return train, dev


@pytest.fixture(scope="module")
def trained(tiny_model, task, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "model"
    train_bi_encoder(config=TrainConfig(**FAST), train_groups=task[0], base_model=tiny_model, out_dir=out)
    return out


def dev_ndcg(model_dir: Path, dev: list[QueryGroup]) -> float:
    ranker = BiEncoderRanker(model_dir, device="cpu")
    return metrics_for(dev, ranker.score_lists([(g.query, g.docs) for g in dev]))["ndcg@10"]


def teacher_of(group: QueryGroup) -> np.ndarray:
    return np.array([sum(word in TEACHER_WORDS for word in doc.split()) for doc in group.docs], dtype=float)


def mean_spearman(model_dir: Path, groups: list[QueryGroup]) -> float:
    scores = BiEncoderRanker(model_dir, device="cpu").score_lists([(g.query, g.docs) for g in groups])
    return float(np.nanmean([spearmanr(s, teacher_of(g)).statistic for s, g in zip(scores, groups)]))


def weights_of(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_training_raises_dev_ndcg_well_above_the_untrained_model(tiny_model, task, trained):
    base, tuned = dev_ndcg(tiny_model, task[1]), dev_ndcg(trained, task[1])
    assert tuned > base + 0.1, (base, tuned)
    assert tuned > 0.9


def test_the_output_loads_in_sentence_transformers_with_the_same_embeddings(trained, task):
    from sentence_transformers import SentenceTransformer

    texts = [task[1][0].query, *task[1][0].docs, "best good meh"]
    theirs = SentenceTransformer(str(trained), device="cpu", local_files_only=True).encode(texts)
    ours = BiEncoder(trained, device="cpu").encode(texts)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert model_kind(trained) == "bi-encoder"


def test_the_output_holds_a_ranker_card_and_training_info(tiny_model, trained):
    card = read_ranker_card(trained)
    assert card["kind"] == "bi-encoder" and card["base_model"] == str(tiny_model) and card["trained_on"] == "labels"
    info = json.loads((trained / "training_info.json").read_text())
    assert info["train_queries"] == 48 and info["steps"] == 4 * 12 and info["parameters"]["learning_rate"] == 1e-3
    assert info["listwise_loss"]["temperature"] == 0.25 and info["listwise_loss"]["target"] == "label"


def test_the_loss_configs_temperature_overrides_the_bi_encoders_default(tiny_model, task, tmp_path):
    config = TrainConfig(**{**FAST, "epochs": 1, "loss_config": {"temperature": 1.0}})
    train_bi_encoder(config=config, train_groups=task[0][:4], base_model=tiny_model, out_dir=tmp_path / "out")
    assert json.loads((tmp_path / "out" / "training_info.json").read_text())["listwise_loss"]["temperature"] == 1.0


def test_training_writes_beside_what_the_directory_already_holds(tiny_model, task, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("kept")
    train_bi_encoder(config=TrainConfig(**{**FAST, "epochs": 1}), train_groups=task[0][:8], base_model=tiny_model,
                     out_dir=out)
    assert (out / "notes.txt").read_text() == "kept"


def test_a_query_borrows_every_other_groups_document_but_its_own_texts_and_its_query_twins():
    """In-batch negatives: grade 0, weighted as the query's own candidates on average, scored
    scale * cosine; a text equal to one of the query's documents, or a document of another group
    asking the same query, is not borrowed. Each distinct text is embedded once."""
    from training.batching import TrainingGroup
    from training.bi_encoder import _batch_texts, _label_loss

    groups = [
        TrainingGroup(query="query q1", docs=["best w1", "w2"], labels=[3.0, 0.0], weights=[1.0, 0.5]),
        TrainingGroup(query="query q2", docs=["w2", "good w3"], labels=[0.0, 2.0], weights=[1.0, 1.0]),
        TrainingGroup(query="query q1", docs=["meh w4"], labels=[1.0], weights=[1.0]),
    ]
    batch = _batch_texts(groups)
    assert batch.texts == ["query q1", "best w1", "w2", "query q2", "good w3", "meh w4"]
    vectors = torch.nn.functional.normalize(torch.randn(len(batch.texts), 4, generator=torch.Generator().manual_seed(0)))
    seen = {}

    def capture(scores, labels, *, weights, mask, soft_labels, grade_probs):
        seen.update(scores=scores, labels=labels, weights=weights, mask=mask, soft_labels=soft_labels)
        return scores.sum()

    _label_loss(capture, groups, batch, vectors, 20.0, 3)
    borrowed = {row: {batch.texts[t] for t in range(len(batch.texts)) if seen["mask"][row, 3 + t]} for row in range(3)}
    assert borrowed == {0: {"good w3"}, 1: {"best w1", "meh w4"}, 2: {"good w3"}}
    assert not seen["labels"][:, 3:].any() and not seen["soft_labels"][:, 3:].any()
    assert seen["weights"][0, 3:].tolist() == [0.75] * 6
    cosine = vectors[0] @ vectors[batch.texts.index("good w3")]
    assert seen["scores"][0, 3 + batch.texts.index("good w3")].item() == pytest.approx(20 * cosine.item(), rel=1e-5)
    assert seen["scores"][0, :2].tolist() == pytest.approx((20 * vectors[[1, 2]] @ vectors[0]).tolist(), rel=1e-5)


def test_candidates_of_weight_0_teach_nothing(tiny_model, task, tmp_path):
    """The export's weights reach the listwise loss: at weight 0 everywhere the loss is 0 and,
    without weight decay, the model leaves training as it came."""
    weightless = [QueryGroup(query_id=g.query_id, query=g.query, docs=g.docs, labels=g.labels,
                             weights=[0.0] * len(g)) for g in task[0][:8]]
    result = train_bi_encoder(config=TrainConfig(**{**FAST, "epochs": 1, "weight_decay": 0.0}),
                              train_groups=weightless, base_model=tiny_model, out_dir=tmp_path / "out")
    assert result.losses == [0.0, 0.0]
    base = BiEncoder(tiny_model, device="cpu").encode(task[1][0].docs)
    np.testing.assert_allclose(BiEncoder(tmp_path / "out", device="cpu").encode(task[1][0].docs), base, atol=1e-6)


def test_distillation_moves_the_students_ranking_toward_the_teachers(tiny_model, task, tmp_path):
    train, dev = task
    out = tmp_path / "student"
    # Labels all 0: distillation must not need a positive.
    unlabelled = [QueryGroup(query_id=g.query_id, query=g.query, doc_ids=g.doc_ids, docs=g.docs,
                             labels=[0.0] * len(g), weights=[1.0] * len(g)) for g in train]
    result = train_bi_encoder(config=TrainConfig(**{**FAST, "epochs": 8}), train_groups=unlabelled,
                              base_model=tiny_model, out_dir=out, teacher_scores=[teacher_of(g) for g in unlabelled])
    assert result.train_queries == len(unlabelled) and result.skipped_queries == 0
    before, after = mean_spearman(tiny_model, dev), mean_spearman(out, dev)
    assert after > before + 0.3, (before, after)
    assert read_ranker_card(out)["trained_on"] == "distillation"


def test_label_mode_without_any_positive_is_refused(tiny_model, task, tmp_path):
    unlabelled = [QueryGroup(query_id=g.query_id, query=g.query, docs=g.docs, labels=[1.0] * len(g),
                             weights=[1.0] * len(g)) for g in task[0][:4]]
    with pytest.raises(ValueError, match=r"no query has a candidate graded >= 2.*teacher_scores"):
        train_bi_encoder(config=TrainConfig(**FAST), train_groups=unlabelled, base_model=tiny_model,
                         out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("misalign, message", [
    (lambda scores: scores[:-1], r"teacher_scores: 3 arrays for 4 training groups"),
    (lambda scores: [scores[0], scores[1][:-1], *scores[2:]], r"teacher_scores\[1\]: shape \(5,\) .* 6 documents"),
    (lambda scores: [scores[0], scores[1], scores[2] * np.nan, scores[3]], r"teacher_scores\[2\]: not finite"),
])
def test_misaligned_teacher_scores_are_refused(tiny_model, task, tmp_path, misalign, message):
    groups = task[0][:4]
    with pytest.raises(ValueError, match=message):
        train_bi_encoder(config=TrainConfig(**FAST), train_groups=groups, base_model=tiny_model,
                         out_dir=tmp_path / "out", teacher_scores=misalign([teacher_of(g) for g in groups]))


@pytest.mark.parametrize("options, message", [
    ({"scale": 0}, r"scale must be a number > 0"),
    ({"teacher_temperature": float("inf")}, r"teacher_temperature must be a number > 0"),
    ({"config": TrainConfig(**{**FAST, "loss": "pairwise"})}, r"loss: the bi-encoder trains with the listwise loss"),
    ({"train_groups": []}, r"train_groups: empty"),
])
def test_bad_options_are_refused_by_name(tiny_model, task, tmp_path, options, message):
    call = {"config": TrainConfig(**FAST), "train_groups": task[0][:4], **options}
    with pytest.raises(ValueError, match=message):
        train_bi_encoder(base_model=tiny_model, out_dir=tmp_path / "out", **call)


def test_the_same_seed_gives_the_same_weights_and_another_seed_others(tiny_model, task, tmp_path):
    def run(name: str, seed: int) -> dict[str, torch.Tensor]:
        train_bi_encoder(config=TrainConfig(**{**FAST, "epochs": 2, "seed": seed}), train_groups=task[0][:16],
                         base_model=tiny_model, out_dir=tmp_path / name)
        return weights_of(tmp_path / name)

    first, again, other = run("a", 7), run("b", 7), run("c", 8)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_a_cancelled_run_writes_no_model(tiny_model, task, tmp_path):
    steps = []
    with pytest.raises(TrainingCancelled, match="cancelled at step 2 of 12"):
        train_bi_encoder(config=TrainConfig(**{**FAST, "epochs": 1}), train_groups=task[0], base_model=tiny_model,
                         out_dir=tmp_path / "out", progress=lambda **kw: steps.append(kw["step"]),
                         should_cancel=lambda: len(steps) >= 2)
    assert steps == [1, 2] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("add_cjk_vocab, unknown", [(True, 0), (False, 4)])
def test_chinese_text_gets_its_own_tokens_instead_of_unk(tiny_model, tmp_path, add_cjk_vocab, unknown):
    groups = [QueryGroup(query_id=f"q{i}", query="头痛 query", docs=["头痛 best w1", "w2 w3", "发烧 w4"],
                         labels=[3.0, 0.0, 0.0], weights=[1.0] * 3) for i in range(4)]
    train_bi_encoder(config=TrainConfig(**{**FAST, "epochs": 1, "add_cjk_vocab": add_cjk_vocab}),
                     train_groups=groups, base_model=tiny_model, out_dir=tmp_path / "out")
    stats = EncodeStats()
    BiEncoder(tmp_path / "out", device="cpu").encode(["头痛 发烧"], stats=stats)
    assert (stats.tokens, stats.unknown) == (4, unknown)
