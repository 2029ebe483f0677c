"""Adding the CJK characters an English vocabulary lacks (training.vocab, TrainConfig.add_cjk_vocab)."""
from __future__ import annotations

import pytest
import torch

from training.config import TrainConfig
from training.data import DataFile, QueryGroup
from training.scoring import load_cross_encoder
from training.trainer import train
from training.vocab import (
    add_tokens_with_distinct_embeddings,
    is_cjk,
    missing_cjk_chars,
)


def test_is_cjk():
    assert is_cjk("糖") and is_cjk("㐀") and is_cjk("豈")
    assert not is_cjk("a") and not is_cjk("。") and not is_cjk("ア")


def test_missing_chars_most_frequent_first_and_deterministic(tiny_model):
    _, tokenizer = load_cross_encoder(tiny_model)
    texts = ["糖尿病 best", "尿糖 w1", "糖 query", "病"]
    assert missing_cjk_chars(tokenizer, texts) == ["糖", "尿", "病"]  # 3, 2, 2 (ties by code point)
    assert missing_cjk_chars(tokenizer, texts, min_count=3) == ["糖"]
    assert missing_cjk_chars(tokenizer, ["best w1 query"]) == []


def test_added_characters_get_distinct_embeddings_and_survive_saving(tiny_model, tmp_path):
    model, tokenizer = load_cross_encoder(tiny_model)
    unk = tokenizer.unk_token_id
    assert tokenizer("糖尿", add_special_tokens=False)["input_ids"] == [unk, unk]
    old_rows = model.get_input_embeddings().weight.shape[0]
    before = model.get_input_embeddings().weight[:old_rows].detach().clone()

    assert add_tokens_with_distinct_embeddings(model, tokenizer, ["糖", "尿"], seed=1) == 2
    ids = tokenizer("糖尿 best", add_special_tokens=False)["input_ids"]
    assert unk not in ids and ids[0] != ids[1]
    weight = model.get_input_embeddings().weight.detach()
    assert weight.shape[0] == old_rows + 2
    assert torch.equal(weight[:old_rows], before)          # the old rows are untouched
    assert not torch.allclose(weight[ids[0]], weight[ids[1]])  # distinct from the first step
    assert add_tokens_with_distinct_embeddings(model, tokenizer, ["糖"]) == 0  # already there

    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    reloaded, reloaded_tokenizer = load_cross_encoder(tmp_path / "m")
    assert reloaded_tokenizer("糖尿 best", add_special_tokens=False)["input_ids"] == ids
    assert torch.equal(reloaded.get_input_embeddings().weight.detach(), weight)


def test_training_with_add_cjk_vocab_writes_a_model_that_reads_the_characters(tiny_model, tmp_path):
    groups = [QueryGroup(query_id=f"q{i}", query="糖尿病 query", doc_ids=[f"q{i}d{j}" for j in range(3)],
                         docs=["糖尿病 best", "w1 w2", "高血压 w3"], labels=[3.0, 0.0, 1.0], weights=[1.0] * 3)
              for i in range(6)]
    data = DataFile(path=tmp_path / "zh.jsonl", format="listwise", groups=groups, sha256="-")
    config = TrainConfig(epochs=1, batch_size=2, group_size=3, max_length=32, learning_rate=1e-3, add_cjk_vocab=True)
    train(config=config, train_data=data, base_model=tiny_model, out_dir=tmp_path / "out")
    model, tokenizer = load_cross_encoder(tmp_path / "out")
    assert tokenizer.unk_token_id not in tokenizer("糖尿病高血压", add_special_tokens=False)["input_ids"]
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_add_cjk_vocab_must_be_a_boolean():
    with pytest.raises(ValueError, match="add_cjk_vocab must be true or false"):
        TrainConfig(add_cjk_vocab="yes").check()


def _vocab_after_training(tiny_model, tmp_path, name, texts, **config):
    groups = [QueryGroup(query_id=f"q{i}", query=texts[0], doc_ids=[f"q{i}d{j}" for j in range(3)],
                         docs=list(texts[1:]), labels=[3.0, 0.0, 1.0], weights=[1.0] * 3) for i in range(4)]
    data = DataFile(path=tmp_path / f"{name}.jsonl", format="listwise", groups=groups, sha256="-")
    train(config=TrainConfig(epochs=1, batch_size=2, group_size=3, max_length=32, **config), train_data=data,
          base_model=tiny_model, out_dir=tmp_path / name)
    model, tokenizer = load_cross_encoder(tmp_path / name)
    return len(tokenizer), model.get_input_embeddings().weight.shape[0]


def test_by_default_chinese_text_gets_its_characters_and_english_text_leaves_the_vocabulary_alone(tiny_model, tmp_path):
    _, base_tokenizer = load_cross_encoder(tiny_model)
    base = len(base_tokenizer)
    assert TrainConfig().add_cjk_vocab is True
    assert _vocab_after_training(tiny_model, tmp_path, "en", ["query w1", "best w2", "w1 w2", "w3"]) == (base, base)
    zh = ["糖尿病 query", "糖尿病 best", "w1 w2", "高血压 w3"]
    assert _vocab_after_training(tiny_model, tmp_path, "zh", zh) == (base + 6, base + 6)  # 糖尿病高血压
    assert _vocab_after_training(tiny_model, tmp_path, "zh-off", zh, add_cjk_vocab=False) == (base, base)


def test_the_base_row_is_the_model_as_given_before_characters_are_added(tiny_model, tmp_path):
    from training.evaluation import evaluate_model

    groups = [QueryGroup(query_id=f"q{i}", query=f"糖尿病 query{i % 2}", doc_ids=[f"q{i}d{j}" for j in range(3)],
                         docs=["糖尿病 best", "w1 w2", "高血压 w3"], labels=[3.0, 0.0, 1.0], weights=[1.0] * 3)
              for i in range(4)]
    data = DataFile(path=tmp_path / "zh.jsonl", format="listwise", groups=groups, sha256="-")
    result = train(config=TrainConfig(epochs=1, batch_size=2, group_size=3, max_length=32), train_data=data,
                   base_model=tiny_model, out_dir=tmp_path / "out", dev_groups=groups)
    model, tokenizer = load_cross_encoder(tiny_model)
    assert result.metrics["base"] == evaluate_model(model, tokenizer, groups, max_length=32)
