"""Serving: score documents for a query with a collection's promoted reranker.

The model is loaded once per process and kept in a small cache keyed by the ModelVersion's id and
path, so a promotion (a different promoted version) is picked up on the next request without a
restart, and the previous model is dropped. Scoring sorts pairs by length into batches and runs
under ``torch.inference_mode`` (training.scoring).

No promoted model means no reranking: NoPromotedModel (the API answers 503). Falling back to the
base model was considered and rejected: the MiniLM bi-encoder has no trained scoring head, so its
"scores" would look like a ranking while being noise.
"""
from __future__ import annotations

import threading

import numpy as np

from .registry import promoted_version
from .scoring import DEFAULT_BATCH_SIZE, load_cross_encoder, score_pairs

MAX_DOCUMENTS = 1000
MAX_LENGTH = 256

_lock = threading.Lock()
_loaded: dict[tuple[int, str], tuple] = {}


class NoPromotedModel(LookupError):
    pass


def model_for(version) -> tuple:
    key = (version.pk, version.path)
    with _lock:
        if key not in _loaded:
            # Only the versions that serve now stay in memory: drop this collection's old ones.
            for stale in [k for k in _loaded if _loaded[k][2] == version.collection_id]:
                del _loaded[stale]
            model, tokenizer = load_cross_encoder(version.path)
            _loaded[key] = (model, tokenizer, version.collection_id)
        model, tokenizer, _ = _loaded[key]
    return model, tokenizer


def rerank(*, query: str, documents: list[str], top_k: int | None = None, collection=None) -> dict:
    version = promoted_version(collection=collection)
    if version is None:
        where = f"collection {collection.slug}" if collection is not None else "any collection"
        raise NoPromotedModel(f"no reranker is promoted for {where}: train and promote one first")
    model, tokenizer = model_for(version)
    max_length = min(MAX_LENGTH, tokenizer.model_max_length or MAX_LENGTH)
    scores = score_pairs(model, tokenizer, [query] * len(documents), documents, max_length=max_length,
                         batch_size=DEFAULT_BATCH_SIZE)
    order = np.argsort(-scores, kind="stable")[: top_k or len(documents)]
    return {
        "model": {"version": version.pk, "collection": version.collection.slug},
        "scores": [float(s) for s in scores],
        "results": [{"index": int(i), "score": float(scores[i])} for i in order],
    }


def clear_cache() -> None:
    with _lock:
        _loaded.clear()
