"""training.rankers: which kind a model directory holds, how each kind scores, fusion with BM25, and
``evaluate_reranker --model DIR`` taking any kind."""
from __future__ import annotations

import json
import shutil
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from training.rankers import (
    BI_ENCODER,
    CROSS_ENCODER,
    FUSION,
    BiEncoderRanker,
    FusionRanker,
    fit_fusion_weight,
    fuse,
    list_bm25,
    load_ranker,
    model_kind,
    save_fusion,
    write_ranker_card,
)
from training.scoring import ModelDirError

from .conftest import synthetic_listwise, write_jsonl


@pytest.fixture(scope="module")
def tiny_bi_encoder(tiny_model, tmp_path_factory):
    """The tiny BERT's encoder without its head, laid out as a sentence-transformers model."""
    from transformers import AutoModel, BertTokenizer

    from training.encoders import Pooling, save_bi_encoder

    directory = tmp_path_factory.mktemp("tiny-bi")
    model = AutoModel.from_pretrained(tiny_model)
    save_bi_encoder(model, BertTokenizer(vocab=str(tiny_model / "vocab.txt")), directory,
                    pooling=Pooling(mode="mean", normalize=True, max_length=32), max_length=32)
    return directory


def test_kinds_are_read_from_the_card_or_the_architecture(tiny_model, tiny_bi_encoder, tmp_path):
    assert model_kind(tiny_model) == CROSS_ENCODER       # BertForSequenceClassification
    assert model_kind(tiny_bi_encoder) == BI_ENCODER     # BertModel
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bi_encoder, copy)
    write_ranker_card(copy, CROSS_ENCODER)
    assert model_kind(copy) == CROSS_ENCODER             # the card wins
    (copy / "ranker.json").write_text('{"kind": "svm"}')
    with pytest.raises(ModelDirError, match=r"ranker.json: kind must be one of"):
        model_kind(copy)
    with pytest.raises(ModelDirError, match="no config.json"):
        model_kind(tmp_path)


def test_a_bi_encoder_scores_by_the_cosine_sentence_transformers_computes(tiny_bi_encoder):
    from sentence_transformers import SentenceTransformer

    docs = ["w1 best w2", "w3 w4", "good w5 w6 w7", "w1 best w2"]
    ranker = load_ranker(tiny_bi_encoder)
    assert isinstance(ranker, BiEncoderRanker)
    scores = ranker.score("query q1", docs)
    model = SentenceTransformer(str(tiny_bi_encoder), device="cpu")
    query, documents = model.encode(["query q1"]), model.encode(docs)
    expected = (documents / np.linalg.norm(documents, axis=1, keepdims=True)) @ (query[0] / np.linalg.norm(query[0]))
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert scores[0] == pytest.approx(scores[3])


def test_fusion_mixes_z_normalised_scores_and_its_ends_are_the_two_rankings():
    model, bm25 = np.array([3.0, 1.0, 2.0]), np.array([0.0, 5.0, 1.0])
    assert list(np.argsort(-fuse(model, bm25, 0.0))) == [0, 2, 1]
    assert list(np.argsort(-fuse(model, bm25, 1.0))) == [1, 2, 0]
    mixed = fuse(model, bm25, 0.5)
    z = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    np.testing.assert_allclose(mixed, 0.5 * z(model) + 0.5 * z(bm25))
    np.testing.assert_allclose(fuse(np.ones(3), bm25, 0.3), 0.3 * z(bm25))  # a flat list adds nothing


def test_the_fitted_weight_is_the_grid_point_that_ranks_best():
    # List 1: the model is right, BM25 wrong; list 2: the model is narrowly wrong, BM25 right. Only a mix
    # ranks both lists' relevant document first.
    model = [np.array([1.0, 0.0, 0.0]), np.array([0.19, 0.2, 0.0])]
    bm25 = [np.array([0.0, 0.3, 0.0]), np.array([4.0, 0.0, 0.0])]
    relevant = [0, 0]

    def top1(scores):
        return float(np.mean([int(np.argmax(s) == r) for s, r in zip(scores, relevant)]))

    weight, value = fit_fusion_weight(model, bm25, top1)
    assert value == 1.0 and 0.0 < weight < 1.0
    assert top1([fuse(m, b, 0.0) for m, b in zip(model, bm25)]) < 1.0
    assert top1([fuse(m, b, 1.0) for m, b in zip(model, bm25)]) < 1.0


def test_list_bm25_scores_the_list_as_its_own_corpus():
    scores = list_bm25("red car", ["a red car", "a blue car", "the river"], method="whitespace")
    assert scores[0] > scores[1] > scores[2] == 0.0
    assert list_bm25("q", []).shape == (0,)


def test_a_fusion_directory_round_trips_and_evaluate_reranker_takes_every_kind(trained_model, tiny_bi_encoder, tmp_path):
    dev = write_jsonl(tmp_path / "dev.jsonl", synthetic_listwise(12, seed=5))
    fused = tmp_path / "fused"
    save_fusion(fused, inner_dir=trained_model, bm25_weight=0.25)
    ranker = load_ranker(fused)
    assert isinstance(ranker, FusionRanker) and ranker.kind == FUSION and ranker.bm25_weight == 0.25
    assert model_kind(fused / "model") == CROSS_ENCODER
    inner = load_ranker(trained_model).score("query q1", ["w1 best", "w2 w3", "good w4"])
    bm25 = list_bm25("query q1", ["w1 best", "w2 w3", "good w4"])
    np.testing.assert_allclose(ranker.score("query q1", ["w1 best", "w2 w3", "good w4"]), fuse(inner, bm25, 0.25),
                               atol=1e-5)
    figures = {}
    for name, directory in (("cross", trained_model), ("bi", tiny_bi_encoder), ("fusion", fused)):
        out = StringIO()
        call_command("evaluate_reranker", "--model", str(directory), "--data", str(dev), "--json", stdout=out)
        figures[name] = json.loads(out.getvalue().splitlines()[-1])
    assert figures["cross"]["ndcg@10"] > 0.9  # the trained model reads the markers
    assert all(f["queries"] == 12 for f in figures.values())
    card = json.loads((fused / "ranker.json").read_text())
    card["bm25_weight"] = 1.5
    (fused / "ranker.json").write_text(json.dumps(card))
    with pytest.raises(ModelDirError, match=r"bm25_weight must be a number in \[0, 1\]"):
        load_ranker(fused)
