"""The trainer: it learns, it resumes where it stopped, it cancels cleanly, its output loads."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.checkpoints import latest_checkpoint
from training.config import TrainConfig
from training.data import read_data_file
from training.trainer import TrainingCancelled, train

FAST = dict(batch_size=4, group_size=6, max_length=32, learning_rate=1e-3, warmup_ratio=0.1)


@pytest.mark.parametrize("loss", ["listwise", "pointwise", "pairwise"])
def test_training_lowers_the_loss_and_raises_dev_ndcg(tiny_model, task_files, tmp_path, loss):
    train_file, dev_file = task_files
    dev = read_data_file(dev_file)
    result = train(config=TrainConfig(loss=loss, epochs=4, **FAST), train_data=read_data_file(train_file),
                   base_model=tiny_model, out_dir=tmp_path / "out", dev_groups=dev.groups)
    first, last = np.mean(result.losses[:6]), np.mean(result.losses[-6:])
    assert last < first
    base, tuned = result.metrics["base"]["ndcg@10"], result.metrics["fine_tuned"]["ndcg@10"]
    assert tuned > base + 0.05, (base, tuned)


def test_progress_reports_steps_loss_and_eta(tiny_model, task_files, tmp_path):
    calls = []
    train(config=TrainConfig(epochs=1, **FAST), train_data=read_data_file(task_files[0]), base_model=tiny_model,
          out_dir=tmp_path / "out", progress=lambda **kw: calls.append(kw))
    assert [c["step"] for c in calls] == list(range(1, 13))
    assert all(c["total_steps"] == 12 and c["loss"] > 0 for c in calls)
    assert calls[-1]["eta_seconds"] == 0


def test_a_cancelled_run_writes_no_model_and_a_resumed_one_matches_an_uninterrupted_one(tiny_model, task_files, tmp_path):
    data = read_data_file(task_files[0])
    config = TrainConfig(epochs=2, checkpoint_every=5, **FAST)
    straight = train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "straight")

    steps = []
    with pytest.raises(TrainingCancelled):
        train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "resumed",
              progress=lambda **kw: steps.append(kw["step"]), should_cancel=lambda: steps[-1] >= 13)
    assert not (tmp_path / "resumed" / "config.json").exists()
    assert latest_checkpoint(tmp_path / "resumed").name == "step-10"

    resumed = train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "resumed")
    assert resumed.steps == straight.steps == 24
    assert (resumed.resumed_from_step, straight.resumed_from_step) == (10, 0)
    card = (tmp_path / "resumed" / "README.md").read_text()
    assert "resumed from the checkpoint at step 10" in card
    assert json.loads((tmp_path / "resumed" / "training_info.json").read_text())["resumed_from_step"] == 10
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-4, atol=1e-6)
    assert latest_checkpoint(tmp_path / "resumed") is None  # checkpoints go once the model is written
    from safetensors.torch import load_file

    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(torch.allclose(a[key], b[key], atol=1e-5) for key in a)


def test_output_loads_in_transformers_and_sentence_transformers_with_a_model_card(tiny_model, task_files, tmp_path):
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path / "out"
    train(config=TrainConfig(epochs=1, **FAST), train_data=read_data_file(task_files[0]), base_model=tiny_model,
          out_dir=out, dev_groups=read_data_file(task_files[1]).groups)
    pairs = [("query q1", "w1 best w2"), ("query q1", "w3 w4"), ("query q2", "good w5")]
    model = AutoModelForSequenceClassification.from_pretrained(out, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    with torch.inference_mode():
        logits = model(**tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True,
                                   return_tensors="pt")).logits.squeeze(-1).numpy()
    cross_encoder = CrossEncoder(str(out), local_files_only=True, device="cpu")
    probabilities = cross_encoder.predict(pairs)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-logits)), rtol=1e-4)  # sigmoid of the logit
    assert cross_encoder.max_seq_length == 32
    card = (out / "README.md").read_text()
    info = json.loads((out / "training_info.json").read_text())
    assert info["data"]["sha256"] in card and "learning_rate" in card and "| fine_tuned |" in card


def test_a_micro_batch_split_into_length_sorted_passes_gives_the_same_loss_and_gradients(tiny_model, task_files):
    """Padding-aware passes (TrainConfig.chunk_cost) change the arithmetic's grouping, not its result:
    every pair's logit lands in its own (group, column) cell either way."""
    from training.batching import EncodedGroups, training_groups
    from training.losses import build_loss
    from training.scoring import load_cross_encoder
    from training.trainer import _micro_batch_loss

    model, tokenizer = load_cross_encoder(tiny_model, device="cpu")  # eval mode: no dropout
    groups, _ = training_groups(read_data_file(task_files[0]).groups, group_size=6)
    encoded = EncodedGroups(tokenizer, groups, group_size=6, max_length=32)
    loss_fn = build_loss("listwise")
    results = []
    for chunk_cost in (None, 0):
        batch = encoded.batch(list(range(8)), chunk_cost=chunk_cost)
        model.zero_grad()
        loss = _micro_batch_loss(model, loss_fn, batch, 6)
        loss.backward()
        results.append((len(batch["features"]), loss.item(),
                        {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (one_pass, loss_one, grads_one), (passes, loss_split, grads_split) = results
    assert one_pass == 1 and passes > 1
    assert loss_split == pytest.approx(loss_one, rel=1e-5)
    assert all(torch.allclose(grads_one[n], grads_split[n], atol=1e-6) for n in grads_one)


def test_in_batch_negatives_pair_each_query_with_other_groups_documents_as_grade_0(tiny_model, task_files):
    from transformers import AutoTokenizer

    from training.batching import EncodedGroups, training_groups

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    groups, _ = training_groups(read_data_file(task_files[0]).groups, group_size=6)
    encoded = EncodedGroups(tokenizer, groups, group_size=6, max_length=32)
    indices = [0, 1, 2, 3]
    batch = encoded.batch(indices, chunk_cost=0, in_batch_negatives=3, generator=torch.Generator().manual_seed(0))
    real = int(batch["mask"].sum())
    assert batch["negative_mask"].shape == (4, 3) and bool(batch["negative_mask"].all())
    assert sorted(batch["positions"].tolist()) == sorted(
        [r * 6 + c for r in range(4) for c in range(int(batch["mask"][r].sum()))] + [24 + i for i in range(12)])
    # Each borrowed pair is (this query, a document of another group), never one of its own.
    rows = [row for features in batch["features"] for row in features["input_ids"].tolist()]
    texts = {p: tokenizer.decode([t for t in row if t != tokenizer.pad_token_id], skip_special_tokens=True)
             for p, row in zip(batch["positions"].tolist(), rows)}
    for slot in range(24, 36):
        row = (slot - 24) // 3
        group = groups[indices[row]]
        text = texts[slot]
        assert text.startswith(group.query)
        assert not any(text == f"{group.query} {doc}" for doc in group.docs)
        assert any(text == f"{group.query} {doc}" for other in indices if other != indices[row]
                   for doc in groups[other].docs)
    assert real + 12 == len(texts)


def test_training_with_in_batch_negatives_learns_and_resumes_exactly(tiny_model, task_files, tmp_path):
    train_file, dev_file = task_files
    data, dev = read_data_file(train_file), read_data_file(dev_file)
    config = TrainConfig(epochs=4, in_batch_negatives=2, checkpoint_every=10, **FAST)
    straight = train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "a", dev_groups=dev.groups)
    assert np.mean(straight.losses[-6:]) < np.mean(straight.losses[:6])
    assert straight.metrics["fine_tuned"]["ndcg@10"] > straight.metrics["base"]["ndcg@10"] + 0.05
    steps = []
    with pytest.raises(TrainingCancelled):
        train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "b",
              progress=lambda **kw: steps.append(kw["step"]), should_cancel=lambda: steps[-1] >= 15)
    resumed = train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "b")
    # The borrowed negatives are drawn from (seed, epoch, micro-batch): the resumed run draws the same.
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-4, atol=1e-6)
