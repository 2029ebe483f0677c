"""Loading a cross-encoder from a local directory and scoring (query, document) pairs with it.

Shared by the trainer's dev evaluation, ``evaluate_reranker`` and the rerank service, so the three
score pairs the same way: the document cut, never the query (training.batching.encode_pairs),
pairs sorted by length into batches (little padding), ``torch.inference_mode``, bf16 autocast on
CUDA.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .batching import encode_pairs, length_sorted_batches, pad_features

# Models load only from local directories; nothing is downloaded at run time (DESIGN.md).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_MAX_LENGTH = 256
DEFAULT_BATCH_SIZE = 64


class ModelDirError(ValueError):
    """A model directory that is missing or cannot be loaded."""


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_cross_encoder(path: str | Path, *, device: str | None = None, eval_mode: bool = True):
    """(model, tokenizer) from a local directory, as a one-logit sequence classifier.

    A directory holding a bare encoder (e.g. the MiniLM bi-encoder) gets a freshly initialised
    scoring head -- the starting point of fine-tuning.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelDirError(f"{path}: not a model directory (no config.json)")
    hf_logging.disable_progress_bar()  # no "Loading weights" bars in command output and worker logs
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized head" is expected for a bare encoder
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"{path}: cannot load the model ({exc})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model.to(pick_device(device))
    if eval_mode:
        model.eval()
    return model, tokenizer


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA (when the GPU supports it); plain float32 on CPU, where bf16 matmuls
    are slower on most machines."""
    enabled = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def forward_logits(model, features: dict) -> torch.Tensor:
    device = next(model.parameters()).device
    features = {key: value.to(device, non_blocking=True) for key, value in features.items()}
    with autocast_for(device):
        return model(**features).logits.squeeze(-1)


def score_pairs(
    model,
    tokenizer,
    queries: Sequence[str],
    docs: Sequence[str],
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """One raw logit per (queries[i], docs[i]) pair, in input order."""
    if len(queries) != len(docs):
        raise ValueError(f"{len(queries)} queries but {len(docs)} documents")
    if not docs:
        return np.zeros(0, dtype=np.float32)
    encoded = encode_pairs(tokenizer, queries, docs, max_length=max_length)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    scores = np.empty(len(docs), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for rows in length_sorted_batches(lengths, batch_size):
                logits = forward_logits(model, pad_features(tokenizer, encoded, rows))
                scores[rows] = logits.float().cpu().numpy()
    finally:
        model.train(was_training)  # a scoring failure mid-training must not leave dropout off
    return scores


def score_lists(model, tokenizer, lists: Sequence[tuple[str, Sequence[str]]], *, max_length: int = DEFAULT_MAX_LENGTH,
                batch_size: int = DEFAULT_BATCH_SIZE) -> list[np.ndarray]:
    """One score array per (query, documents) list: every pair scored in one length-sorted pass."""
    queries = [query for query, docs in lists for _ in docs]
    docs = [doc for _, docs in lists for doc in docs]
    flat = score_pairs(model, tokenizer, queries, docs, max_length=max_length, batch_size=batch_size)
    bounds = np.cumsum([0] + [len(docs) for _, docs in lists])
    return [flat[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
