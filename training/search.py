"""BM25 recall over a collection's documents for the search preview.

The index (mining.text.bm25 over mining.text.tokenize with the collection's tokenizer) is built once per
corpus version and kept under ``DATA_DIR/search/<collection id>/v<corpus_version>-<tokenizer>``
(documents are addressed by position; their ids sit beside the index), and once per process in
memory. A new corpus version (documents added or changed) means a new index.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from django.conf import settings

_lock = threading.Lock()
_indexes: dict[tuple, tuple] = {}


def index_dir(collection) -> Path:
    return Path(settings.DATA_DIR) / "search" / str(collection.pk) / f"v{collection.corpus_version}-{collection.tokenizer}"


def collection_index(collection):
    """(BM25Index, document ids by position), or None for a collection without documents."""
    from annotate.models import Document
    from mining.text.bm25 import BM25Index
    from mining.text.tokenize import tokenize

    key = (collection.pk, collection.corpus_version, collection.tokenizer, str(settings.DATA_DIR))
    with _lock:
        if key in _indexes:
            return _indexes[key]
        folder = index_dir(collection)
        if (folder / "index" / "meta.json").is_file() and (folder / "documents.npy").is_file():
            loaded = BM25Index.load(folder / "index"), np.load(folder / "documents.npy")
        else:
            rows = Document.objects.filter(collection=collection).order_by("pk").values_list("pk", "title", "text")
            ids, tokens = [], []
            for pk, title, text in rows.iterator(chunk_size=2000):
                ids.append(pk)
                tokens.append(tokenize(f"{title}\n{text}" if title else text, method=collection.tokenizer))
            if not ids:
                return None
            index = BM25Index.build(tokens)
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / "documents.npy", np.asarray(ids, dtype=np.int64))
            index.save(folder / "index")
            loaded = index, np.asarray(ids, dtype=np.int64)
        _indexes[key] = loaded
        return loaded


def bm25_search(collection, query: str, *, k: int = 100) -> list[tuple[int, float]]:
    """(document pk, BM25 score) of the k best matches, best first; documents scoring 0 left out."""
    from mining.text.tokenize import tokenize

    found = collection_index(collection)
    if found is None:
        return []
    index, ids = found
    top, scores = index.top_k([tokenize(query, method=collection.tokenizer)], k)
    return [(int(ids[i]), float(s)) for i, s in zip(top[0], scores[0]) if s > 0]
