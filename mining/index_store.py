"""Per-collection caches on disk: the BM25 index (and, through `versioned_dir`, the embeddings).

A collection's BM25 index is built once per (collection, corpus_version, tokenizer, k1, b,
epsilon) and stored under ``DATA_DIR/indexes/<slug>/<key>/``; every mining task of every worker
on the machine (or on a shared DATA_DIR) opens that one copy with mmap. When documents change the
importer bumps ``corpus_version``, the key changes, the next task builds the new index and the
older versions are removed.

Concurrency: a builder writes into a private temporary directory next to the target and renames
it into place at the end, so a reader only ever sees a complete index. Two builders racing for
the same key both finish, the first rename wins and the second throws its copy away (a rename
onto a non-empty directory fails). A lock file makes a second builder on the same machine wait for
the first instead of doing the work twice; it is only an optimisation: correctness comes from the
rename. Removing an old version while a worker still has it mapped is safe on POSIX (the
mapped files live on until they are unmapped).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _

from .text.bm25 import BM25Index, BM25Params
from .text.tokenize import tokenize_many

logger = logging.getLogger(__name__)

# A staging directory older than this is a crashed builder's leftover and may be removed.
_STALE_STAGING_SECONDS = 6 * 3600
_LOADED_MAX = 4  # indexes kept open per process (a worker mines a few collections at most)


# ---- versioned directories (shared with mining/dense.py) ---------------------------------------

def cache_root(kind: str, slug: str) -> Path:
    """DATA_DIR/<kind>/<slug>: all versions of one kind of cache for one collection."""
    return Path(settings.DATA_DIR) / kind / slug


@contextmanager
def _build_lock(root: Path, key: str):
    """Serialise builders of one key on this machine (best effort: flock may be a no-op on NFS)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{key}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # file systems without locks: the rename below still keeps data whole
            pass
        try:
            yield
        finally:
            try:
                fcntl.flock(handle, fcntl.LOCK_UN)
            except OSError:
                pass


def versioned_dir(root: Path, key: str, build: Callable[[Path], None], *, keep: Callable[[str], bool]) -> Path:
    """The directory ``root/key``, built by ``build(staging_dir)`` if it does not exist yet.

    After a build, sibling versions for which ``keep(name)`` is false are removed.
    """
    final = root / key
    if (final / "COMPLETE").is_file():
        return final
    with _build_lock(root, key):
        if (final / "COMPLETE").is_file():  # built by someone else while we waited
            return final
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=root))
        try:
            build(staging)
            (staging / "COMPLETE").write_text(str(time.time()))
            try:
                os.rename(staging, final)
            except OSError:
                if not (final / "COMPLETE").is_file():
                    # A half-removed or foreign directory in the way: replace it.
                    shutil.rmtree(final, ignore_errors=True)
                    os.rename(staging, final)
                else:  # another builder (another machine on a shared DATA_DIR) won the race
                    shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    prune(root, keep=lambda name: name == key or keep(name))
    return final


def prune(root: Path, *, keep: Callable[[str], bool]) -> list[str]:
    """Remove the versions under `root` that `keep` rejects, and stale staging leftovers."""
    removed = []
    now = time.time()
    for entry in root.iterdir() if root.is_dir() else ():
        name = entry.name
        if name.startswith("."):
            if name.endswith(".tmp") and now - entry.stat().st_mtime > _STALE_STAGING_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
            continue
        if entry.is_dir() and not keep(name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(name)
    if removed:
        logger.info("removed old cache versions under %s: %s", root, ", ".join(sorted(removed)))
    return removed


def version_of(key: str) -> int | None:
    """The corpus version a cache key starts with (``v12-...`` -> 12)."""
    head = key.split("-", 1)[0]
    return int(head[1:]) if head[:1] == "v" and head[1:].isdigit() else None


def keep_current_and_newer(corpus_version: int) -> Callable[[str], bool]:
    """Keep every key of this corpus version or a newer one (other tokenizers/parameters too)."""
    return lambda name: (version_of(name) or -1) >= corpus_version


# ---- the BM25 index of a collection --------------------------------------------------------------

@dataclass(frozen=True)
class CollectionIndex:
    """A BM25 index plus the Document primary key behind each of its positions."""

    path: Path
    bm25: BM25Index
    doc_ids: np.ndarray  # position -> Document.pk, ascending
    tokenizer: str

    def positions_of(self, document_pks) -> np.ndarray:
        """Index positions of the given Document pks (-1 for one not in this index)."""
        pks = np.asarray(list(document_pks), dtype=np.int64)
        found = np.searchsorted(self.doc_ids, pks)
        found = np.clip(found, 0, max(len(self.doc_ids) - 1, 0))
        return np.where(self.doc_ids[found] == pks, found, -1) if len(self.doc_ids) else np.full(len(pks), -1)


def bm25_params_for(collection) -> BM25Params:
    """The collection's BM25 parameters (mining_settings "bm25": {"k1","b","epsilon"})."""
    raw = (collection.mining_settings or {}).get("bm25", {}) or {}
    defaults = BM25Params()
    try:
        return BM25Params(
            k1=float(raw.get("k1", defaults.k1)),
            b=float(raw.get("b", defaults.b)),
            epsilon=float(raw.get("epsilon", defaults.epsilon)),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(_("collection %(slug)s: mining_settings.bm25 must hold numbers: %(error)s") % {
            "slug": collection.slug, "error": exc}) from None


def index_key(collection, params: BM25Params | None = None) -> str:
    params = params or bm25_params_for(collection)
    return f"v{collection.corpus_version}-{collection.tokenizer}-k1={params.k1:g}-b={params.b:g}-eps={params.epsilon:g}"


def document_texts(collection) -> tuple[np.ndarray, list[str]]:
    """(Document pks ascending, title + text of each) — the corpus as every cache sees it."""
    from annotate.models import Document

    rows = Document.objects.filter(collection=collection).order_by("pk").values_list("pk", "title", "text")
    pks, texts = [], []
    for pk, title, text in rows.iterator(chunk_size=5000):
        pks.append(pk)
        texts.append(f"{title}\n{text}" if title else text)
    return np.asarray(pks, dtype=np.int64), texts


def consistent_corpus(collection) -> tuple[int, np.ndarray, list[str]]:
    """The corpus read together with the corpus_version it belongs to.

    The version is read before and after the documents; if an import changed it in between, read
    again, so a cache is never stored under a version whose documents it does not hold.
    """
    from annotate.models import Collection

    for _attempt in range(5):
        version = Collection.objects.values_list("corpus_version", flat=True).get(pk=collection.pk)
        pks, texts = document_texts(collection)
        if Collection.objects.values_list("corpus_version", flat=True).get(pk=collection.pk) == version:
            return version, pks, texts
    raise RuntimeError(_("collection %(slug)s: documents kept changing while the index was built") % {
        "slug": collection.slug})


_loaded: OrderedDict[str, CollectionIndex] = OrderedDict()
_loaded_lock = threading.Lock()


def collection_index(collection) -> CollectionIndex:
    """The collection's BM25 index for its current corpus version: opened, or built then opened."""
    collection.refresh_from_db(fields=["corpus_version", "tokenizer", "mining_settings"])
    params = bm25_params_for(collection)
    root = cache_root("indexes", collection.slug)
    key = index_key(collection, params)
    path = root / key
    with _loaded_lock:
        cached = _loaded.get(str(path))
        if cached is not None and (path / "COMPLETE").is_file():
            _loaded.move_to_end(str(path))
            return cached

    def build(staging: Path) -> None:
        version, pks, texts = consistent_corpus(collection)
        if version != collection.corpus_version:
            raise _CorpusMoved()
        if len(pks) == 0:
            raise ValueError(_("collection %(slug)s has no documents to index") % {"slug": collection.slug})
        started = time.monotonic()
        index = BM25Index.build(tokenize_many(texts, method=collection.tokenizer),
                                k1=params.k1, b=params.b, epsilon=params.epsilon)
        index.save(staging / "bm25")
        np.save(staging / "doc_ids.npy", pks)
        (staging / "meta.json").write_text(json.dumps({
            "collection": collection.slug, "corpus_version": version, "tokenizer": collection.tokenizer,
            "n_docs": int(len(pks)), "seconds": round(time.monotonic() - started, 3),
        }))
        logger.info("built BM25 index %s/%s: %d documents in %.1f s",
                    collection.slug, key, len(pks), time.monotonic() - started)

    try:
        path = versioned_dir(root, key, build, keep=keep_current_and_newer(collection.corpus_version))
    except _CorpusMoved:
        return collection_index(collection)  # documents changed meanwhile: build the new version
    index = CollectionIndex(
        path=path,
        bm25=BM25Index.load(path / "bm25", mmap=True),
        doc_ids=np.load(path / "doc_ids.npy", mmap_mode="r"),
        tokenizer=collection.tokenizer,
    )
    with _loaded_lock:
        _loaded[str(path)] = index
        while len(_loaded) > _LOADED_MAX:
            _loaded.popitem(last=False)
    return index


class _CorpusMoved(Exception):
    """The corpus version changed between choosing a key and reading the documents."""
