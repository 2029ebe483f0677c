"""Fixtures for the training loop: a tiny BERT (seconds on CPU) and a small synthetic ranking task.

The task: a document's grade is written into it by marker words among random filler -- grade 3
documents hold ``best``, grade 2 ``good``, grade 1 ``meh``, grade 0 none of them. Any model that
reads the document learns it in a few dozen steps, so training must raise dev NDCG well above
the untrained model's.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from annotate.splits import split_for

FILLER = [f"w{i}" for i in range(40)]
MARKERS = {3: "best", 2: "good", 1: "meh"}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *MARKERS.values(), "query", *FILLER, *(f"q{i}" for i in range(20))]


def make_tiny_model(directory: Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    # BertTokenizer(vocab=...) reads the file; BertTokenizerFast(vocab_file=...) silently ignores it
    # in transformers 5.
    tokenizer = BertTokenizer(vocab=str(vocab))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def synthetic_listwise(n_queries: int, *, seed: int, candidates: int = 6, split: str | None = None) -> list[dict]:
    rng = random.Random(seed)
    lines = []
    for q in range(n_queries):
        grades = [rng.choice([2, 3])] + [rng.choice([0, 0, 1, 2]) for _ in range(candidates - 1)]
        rng.shuffle(grades)
        docs = []
        for d, grade in enumerate(grades):
            words = rng.sample(FILLER, rng.randint(3, 12))
            if grade in MARKERS:
                words.insert(rng.randrange(len(words) + 1), MARKERS[grade])
            docs.append({"doc_id": f"s{seed}q{q}d{d}", "doc": " ".join(words), "label": grade})
        line = {"query_id": f"s{seed}q{q}", "query": f"query q{q % 20}", "candidates": docs}
        if split:
            line["split"] = split
        lines.append(line)
    return lines


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def task_files(tmp_path) -> tuple[Path, Path]:
    train = write_jsonl(tmp_path / "train.jsonl", synthetic_listwise(48, seed=1))
    dev = write_jsonl(tmp_path / "dev.jsonl", synthetic_listwise(16, seed=2))
    return train, dev


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """A 32-wide model gains nothing from threads, and on a shared 2-core machine they contend."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_snapshot(collection, path: Path, *, n_judgments: int = 0):
    """A finished listwise export snapshot row over a file written by the test (its train and dev
    lines marked by ``split``)."""
    from annotate.models import ExportSnapshot

    return ExportSnapshot.objects.create(
        collection=collection, format="listwise", status=ExportSnapshot.Status.DONE, file_path=str(path),
        n_judgments=n_judgments, counts={"queries": sum(1 for _ in path.open())},
    )


def snapshot_file(path: Path, *, dev: bool = True) -> Path:
    lines = synthetic_listwise(48, seed=1, split="train")
    if dev:
        lines += synthetic_listwise(16, seed=2, split="dev")
    return write_jsonl(path, lines)


FAST_RUN = {"epochs": 4, "batch_size": 4, "group_size": 6, "max_length": 32, "learning_rate": 1e-3}
# A run's params in tests: the cross-encoder candidate only (besides the zero-shot base, always
# scored), and a gate that decides on the synthetic snapshot's 16 dev queries.
FAST_RUN_PARAMS = {**FAST_RUN, "candidates": ["cross-encoder"], "min_dev_queries": 10}


@pytest.fixture(scope="session")
def trained_model(tiny_model, tmp_path_factory) -> Path:
    """A tiny model fine-tuned on the synthetic task (it ranks best > good > meh > none)."""
    from training.config import TrainConfig
    from training.data import read_data_file
    from training.trainer import train

    root = tmp_path_factory.mktemp("trained")
    data = read_data_file(write_jsonl(root / "train.jsonl", synthetic_listwise(48, seed=1)))
    train(config=TrainConfig(**{**FAST_RUN, "epochs": 12}), train_data=data, base_model=tiny_model, out_dir=root / "model")
    return root / "model"


def query_texts(split: str, n: int) -> list[str]:
    """n query texts that annotate.splits puts in `split`."""
    found, i = [], 0
    while len(found) < n:
        text = f"query q{i % 20} {i}"
        if split_for(text) == split:
            found.append(text)
        i += 1
    return found


@pytest.fixture
def graded_collection(db):
    """12 train and 4 dev queries of 5 documents (marker words), each graded by one person."""
    import numpy as np
    from django.contrib.auth import get_user_model

    from annotate.models import Candidate, Collection, Document, Judgment, Query

    collection = Collection.objects.create(slug="mj", name="MJ")
    person = get_user_model().objects.create_user("grader")
    rng = np.random.default_rng(1)
    for split in ("train", "dev"):
        for q, text in enumerate(query_texts(split, 12 if split == "train" else 4)):
            query = Query.objects.create(collection=collection, external_id=f"{split}{q}", text=text)
            for d in range(5):
                grade = int(rng.integers(0, 4))
                words = list(rng.choice(FILLER, 6)) + ([MARKERS[grade]] if grade in MARKERS else [])
                doc = Document.objects.create(collection=collection, external_id=f"{split}{q}-{d}", text=" ".join(words))
                candidate = Candidate.objects.create(collection=collection, query=query, document=doc)
                Judgment.objects.create(collection=collection, candidate=candidate, annotator=person, grade=grade)
    return collection
