"""Fixtures for mining jobs: a tiny sentence-transformers-style bi-encoder and small collections."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotate.importing import import_files

TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + "the a of and to in is for on with cat dog bird fish tree river mountain city car road "
      "red blue green small big fast slow runs swims flies grows flows stands drives".split()
    + list("宝头痛")
)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A 1-layer BERT with a 40-word vocabulary, laid out like a sentence-transformers model."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    directory = tmp_path_factory.mktemp("tiny-encoder")
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(directory)
    BertTokenizer(vocab=str(vocab)).save_pretrained(directory)
    (directory / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 16, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}))
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32}))
    return directory


def write_beir(directory: Path, *, corpus: dict[str, str], queries: dict[str, str], qrels: list[tuple[str, str, int]]):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "corpus.jsonl", "w", encoding="utf-8") as f:
        for doc_id, text in corpus.items():
            f.write(json.dumps({"_id": doc_id, "text": text}, ensure_ascii=False) + "\n")
    with open(directory / "queries.jsonl", "w", encoding="utf-8") as f:
        for query_id, text in queries.items():
            f.write(json.dumps({"_id": query_id, "text": text}, ensure_ascii=False) + "\n")
    with open(directory / "qrels.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for query_id, doc_id, grade in qrels:
            f.write(f"{query_id}\t{doc_id}\t{grade}\n")
    return directory


ANIMALS = ["cat", "dog", "bird", "fish"]
PLACES = ["tree", "river", "mountain", "city", "road"]
COLOURS = ["red", "blue", "green", "small", "big"]


def tiny_corpus(n_queries: int = 12) -> tuple[dict, dict, list]:
    """Words of the tiny vocabulary combined: every query has lexical matches and a judged positive."""
    corpus, queries, qrels = {}, {}, []
    d = 0
    for i, animal in enumerate(ANIMALS):
        for j, place in enumerate(PLACES):
            for colour in COLOURS:
                corpus[f"d{d}"] = f"the {colour} {animal} stands in the {place}"
                d += 1
    for q in range(n_queries):
        animal, place = ANIMALS[q % 4], PLACES[q % 5]
        queries[f"q{q}"] = f"{animal} {place} {COLOURS[q % 5]}"
        qrels.append((f"q{q}", f"d{(q % 4) * 25 + (q % 5) * 5 + q % 5}", 3))
    return corpus, queries, qrels


@pytest.fixture
def tiny_collection(tmp_path, db):
    """A collection of 100 short English documents and 12 queries, each with one judged positive."""
    corpus, queries, qrels = tiny_corpus()
    files = write_beir(tmp_path / "tiny", corpus=corpus, queries=queries, qrels=qrels)
    import_files(collection_slug="tiny", corpus=files / "corpus.jsonl", queries=files / "queries.jsonl",
                 qrels=files / "qrels.tsv")
    from annotate.models import Collection

    return Collection.objects.get(slug="tiny")
