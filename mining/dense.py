"""Dense retrieval with a bi-encoder (training.encoders: the one encoder the rankers and the
bi-encoder trainer use too; here it defaults to BASE_MODEL_DIR).

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

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _

from training import encoders
from training.encoders import EncodeStats, ModelDirError, Pooling, read_pooling  # noqa: F401 -- mining's names

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


class BiEncoder(encoders.BiEncoder):
    """training.encoders.BiEncoder with the default model: BASE_MODEL_DIR."""

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 64, device: str | None = None):
        super().__init__(model_dir or settings.BASE_MODEL_DIR or "", batch_size=batch_size, device=device)


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


def unk_warning(unk_rate: float, *, slug: str, model_dir: Path) -> str | None:
    if unk_rate <= UNK_WARNING_RATE:
        return None
    return _("collection %(slug)s: the model's tokenizer turns %(rate)s of the tokens into [UNK] (over %(limit)s); "
             "dense retrieval with %(model)s sees little of this text — use a model whose vocabulary covers its "
             "language, or bm25") % {"slug": slug, "rate": f"{unk_rate:.1%}", "limit": f"{UNK_WARNING_RATE:.0%}",
                                     "model": model_dir}


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
            raise RuntimeError(_("collection %(slug)s: documents changed while being embedded; retry") % {
                "slug": collection.slug})
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
    warning = unk_warning(meta["unk_rate"], slug=collection.slug, model_dir=encoder.model_dir)
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
