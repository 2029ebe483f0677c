"""Dense retrieval with a bi-encoder loaded from a local sentence-transformers-style directory.

The model is read with transformers' AutoModel/AutoTokenizer (local files only, nothing is
downloaded); pooling and normalisation follow the directory's ``modules.json`` and its Pooling
module's ``config.json`` (mean, CLS or max pooling; a ``Normalize`` module L2-normalises). A plain
transformers directory without ``modules.json`` gets mean pooling and normalisation.

Texts are encoded in batches sorted by length (little padding), under ``torch.inference_mode``.
A collection's document embeddings are cached per corpus version and model under
``DATA_DIR/embeddings/<slug>/<key>/`` (float32 .npy, opened with mmap), built with the same
atomic rename as the BM25 index (mining/index_store.py). Top-k is exact: a matrix product in
blocks of queries, or faiss's exact inner-product index when faiss is installed and the corpus
is large.

A vocabulary that does not cover the collection's script makes the encoder blind: MiniLM's
English WordPiece vocabulary turns much of a Chinese corpus into [UNK]. The share of [UNK] among
the corpus's tokens is measured when the embeddings are built; above 5 % a warning is logged and
returned with the embeddings (the mining job shows it).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from .index_store import (
    cache_root,
    consistent_corpus,
    keep_current_and_newer,
    versioned_dir,
)

logger = logging.getLogger(__name__)

UNK_WARNING_RATE = 0.05
# faiss (optional) is used for corpora at least this large; below, numpy's product is as fast.
FAISS_MIN_DOCS = 200_000
_QUERY_BLOCK = 256  # queries scored per matrix product (bounds the (queries x docs) score block)


class ModelDirError(ValueError):
    """The model directory cannot serve as a bi-encoder; the message names the file and problem."""


@dataclass(frozen=True)
class Pooling:
    mode: str = "mean"  # mean | cls | max
    normalize: bool = True
    max_length: int = 256


def read_pooling(model_dir: Path) -> Pooling:
    """Pooling, normalisation and max length from a sentence-transformers directory's config files."""
    modules_file = model_dir / "modules.json"
    max_length = 256
    st_config = model_dir / "sentence_bert_config.json"
    if st_config.is_file():
        max_length = int(json.loads(st_config.read_text("utf-8")).get("max_seq_length") or max_length)
    if not modules_file.is_file():
        return Pooling(max_length=max_length)
    try:
        modules = json.loads(modules_file.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelDirError(f"{modules_file}: not valid JSON: {exc}") from None
    mode, normalize = "mean", False
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith(".Pooling"):
            config_file = model_dir / module.get("path", "") / "config.json"
            config = json.loads(config_file.read_text("utf-8")) if config_file.is_file() else {}
            if config.get("pooling_mode_cls_token"):
                mode = "cls"
            elif config.get("pooling_mode_max_tokens"):
                mode = "max"
            elif config.get("pooling_mode_mean_tokens", True) or config.get("pooling_mode_mean_sqrt_len_tokens"):
                mode = "mean"
        elif kind.endswith(".Normalize"):
            normalize = True
    return Pooling(mode=mode, normalize=normalize, max_length=max_length)


@dataclass
class EncodeStats:
    tokens: int = 0
    unknown: int = 0

    @property
    def unk_rate(self) -> float:
        return self.unknown / self.tokens if self.tokens else 0.0


class BiEncoder:
    """A sentence encoder: texts in, float32 vectors out (L2-normalised when the model says so)."""

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 64, device: str | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        directory = Path(model_dir or settings.BASE_MODEL_DIR or "")
        if not str(model_dir or settings.BASE_MODEL_DIR or "") or not directory.is_dir():
            raise ModelDirError(f"{directory}: no model directory (set BASE_MODEL_DIR or pass one)")
        if not (directory / "config.json").is_file():
            raise ModelDirError(f"{directory / 'config.json'}: missing; not a transformers model directory")
        self.model_dir = directory.resolve()
        self.pooling = read_pooling(self.model_dir)
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).to(self.device).eval()
        self.max_length = min(self.pooling.max_length, getattr(self.tokenizer, "model_max_length", 10**6) or 10**6)
        self.dimension = int(self.model.config.hidden_size)

    @property
    def fingerprint(self) -> str:
        """Names the model in cache keys: its path plus the size and mtime of its weight files."""
        parts = [str(self.model_dir), self.pooling.mode, str(self.pooling.normalize), str(self.max_length)]
        for weights in sorted(self.model_dir.glob("*.safetensors")) + sorted(self.model_dir.glob("*.bin")):
            stat = weights.stat()
            parts.append(f"{weights.name}:{stat.st_size}:{int(stat.st_mtime)}")
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]

    def encode(self, texts: Sequence[str], *, stats: EncodeStats | None = None, progress=None) -> np.ndarray:
        """Embeddings of `texts` in their order, shape (len(texts), dimension), float32."""
        import torch

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        # Longest first: a batch pads to its longest text, so similar lengths waste little work,
        # and an out-of-memory error shows on the first batch rather than the last.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        unk_id = self.tokenizer.unk_token_id
        special = set(self.tokenizer.all_special_ids)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                encoded = self.tokenizer(
                    [texts[i] for i in batch], padding=True, truncation=True,
                    max_length=self.max_length, return_tensors="pt",
                )
                if stats is not None:
                    ids = encoded["input_ids"][encoded["attention_mask"].bool()]
                    content = ~torch.isin(ids, torch.tensor(sorted(special - {unk_id}), dtype=ids.dtype))
                    stats.tokens += int(content.sum())
                    stats.unknown += int((ids == unk_id).sum()) if unk_id is not None else 0
                encoded = {name: tensor.to(self.device) for name, tensor in encoded.items()}
                hidden = self.model(**encoded).last_hidden_state
                vectors = self._pool(hidden, encoded["attention_mask"])
                out[batch] = vectors.float().cpu().numpy()
                if progress is not None:
                    progress(len(batch))
        return out

    def _pool(self, hidden, mask):
        import torch

        if self.pooling.mode == "cls":
            vectors = hidden[:, 0]
        elif self.pooling.mode == "max":
            vectors = hidden.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).max(dim=1).values
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            vectors = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        if self.pooling.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors


_encoders: OrderedDict[str, BiEncoder] = OrderedDict()
_encoders_lock = threading.Lock()


def bi_encoder(model_dir: str | Path | None = None) -> BiEncoder:
    """A process-wide encoder per model directory (loading one takes seconds)."""
    key = str(Path(model_dir or settings.BASE_MODEL_DIR or "").resolve())
    with _encoders_lock:
        if key not in _encoders:
            _encoders[key] = BiEncoder(model_dir)
            while len(_encoders) > 2:
                _encoders.popitem(last=False)
        _encoders.move_to_end(key)
        return _encoders[key]


def unk_warning(unk_rate: float, *, what: str, model_dir: Path) -> str | None:
    if unk_rate <= UNK_WARNING_RATE:
        return None
    return (f"{what}: the model's tokenizer turns {unk_rate:.1%} of the tokens into [UNK] "
            f"(over {UNK_WARNING_RATE:.0%}); dense retrieval with {model_dir} sees little of this text — "
            f"use a model whose vocabulary covers its language, or bm25")


@dataclass(frozen=True)
class CorpusEmbeddings:
    path: Path
    vectors: np.ndarray  # (documents x dimension) float32, mmap
    doc_ids: np.ndarray  # row -> Document.pk ascending
    unk_rate: float
    warnings: list[str] = field(default_factory=list)


def corpus_embeddings(collection, encoder: BiEncoder, *, progress=None) -> CorpusEmbeddings:
    """The collection's document embeddings for its corpus version and this model (cached)."""
    collection.refresh_from_db(fields=["corpus_version"])
    root = cache_root("embeddings", collection.slug)
    key = f"v{collection.corpus_version}-{encoder.fingerprint}"

    def build(staging: Path) -> None:
        version, pks, texts = consistent_corpus(collection)
        if version != collection.corpus_version:
            raise RuntimeError(f"collection {collection.slug}: documents changed while being embedded; retry")
        started = time.monotonic()
        stats = EncodeStats()
        vectors = encoder.encode(texts, stats=stats, progress=progress)
        np.save(staging / "embeddings.npy", vectors)
        np.save(staging / "doc_ids.npy", pks)
        (staging / "meta.json").write_text(json.dumps({
            "collection": collection.slug, "corpus_version": version, "model": str(encoder.model_dir),
            "dimension": encoder.dimension, "n_docs": int(len(pks)), "tokens": stats.tokens,
            "unknown_tokens": stats.unknown, "unk_rate": stats.unk_rate,
            "seconds": round(time.monotonic() - started, 3),
        }))
        logger.info("embedded %d documents of %s with %s in %.1f s (unk %.2f%%)", len(pks), collection.slug,
                    encoder.model_dir.name, time.monotonic() - started, 100 * stats.unk_rate)

    path = versioned_dir(root, key, build, keep=keep_current_and_newer(collection.corpus_version))
    meta = json.loads((path / "meta.json").read_text())
    warning = unk_warning(meta["unk_rate"], what=f"collection {collection.slug}", model_dir=encoder.model_dir)
    if warning:
        logger.warning(warning)
    return CorpusEmbeddings(
        path=path,
        vectors=np.load(path / "embeddings.npy", mmap_mode="r"),
        doc_ids=np.load(path / "doc_ids.npy", mmap_mode="r"),
        unk_rate=meta["unk_rate"],
        warnings=[warning] if warning else [],
    )


def top_k(query_vectors: np.ndarray, doc_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k: (indices, scores), each (queries x k), best first, ties by index."""
    n_docs = len(doc_vectors)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, n_docs)
    if n_docs >= FAISS_MIN_DOCS:
        found = _faiss_top_k(query_vectors, doc_vectors, k)
        if found is not None:
            return found
    indices = np.zeros((len(query_vectors), k), dtype=np.int64)
    scores = np.zeros((len(query_vectors), k), dtype=np.float32)
    docs = np.asarray(doc_vectors, dtype=np.float32)
    for start in range(0, len(query_vectors), _QUERY_BLOCK):
        block = np.asarray(query_vectors[start : start + _QUERY_BLOCK], dtype=np.float32) @ docs.T
        if k < n_docs:
            part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(n_docs), block.shape).copy()
        part_scores = np.take_along_axis(block, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        indices[start : start + len(block)] = np.take_along_axis(part, order, axis=1)
        scores[start : start + len(block)] = np.take_along_axis(part_scores, order, axis=1)
    return indices, scores


def _faiss_top_k(query_vectors, doc_vectors, k):
    try:
        import faiss  # optional: not a dependency
    except ImportError:
        return None
    index = faiss.IndexFlatIP(doc_vectors.shape[1])
    index.add(np.ascontiguousarray(doc_vectors, dtype=np.float32))
    scores, indices = index.search(np.ascontiguousarray(query_vectors, dtype=np.float32), k)
    return indices.astype(np.int64), scores
