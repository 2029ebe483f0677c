"""The collection's BM25 index on disk: built once per corpus version, shared, rebuilt on change, old ones removed."""
import threading

import numpy as np
import pytest

from annotate.importing import import_files
from mining import index_store
from mining.text.bm25 import BM25Index
from mining.text.tokenize import tokenize_many

from .conftest import write_beir


def test_index_is_built_once_and_scores_like_a_fresh_index(tiny_collection, settings):
    first = index_store.collection_index(tiny_collection)
    assert first.path.parent == settings.DATA_DIR / "indexes" / "tiny"
    assert first.path.name.startswith(f"v{tiny_collection.corpus_version}-auto-")
    built_at = (first.path / "COMPLETE").read_text()
    again = index_store.collection_index(tiny_collection)
    assert (again.path / "COMPLETE").read_text() == built_at
    assert isinstance(again.doc_ids, np.memmap) and not again.bm25.weights.data.flags.owndata  # mmap, not a copy
    texts = [d.text for d in tiny_collection.documents.order_by("pk")]
    fresh = BM25Index.build(tokenize_many(texts))
    query = tokenize_many(["red cat river"])[0]
    assert np.allclose(again.bm25.scores(query), fresh.scores(query))
    assert list(again.doc_ids) == list(tiny_collection.documents.order_by("pk").values_list("pk", flat=True))


def test_changed_documents_build_a_new_version_and_remove_the_old(tiny_collection, tmp_path):
    old = index_store.collection_index(tiny_collection)
    files = write_beir(tmp_path / "more", corpus={"new1": "a blue fish swims in the river"}, queries={}, qrels=[])
    import_files(collection_slug="tiny", corpus=files / "corpus.jsonl")
    tiny_collection.refresh_from_db()
    new = index_store.collection_index(tiny_collection)
    assert new.path != old.path
    assert not old.path.exists()
    assert new.bm25.n_docs == old.bm25.n_docs + 1


def test_other_parameters_get_their_own_index(tiny_collection):
    default = index_store.collection_index(tiny_collection)
    tiny_collection.mining_settings = {"bm25": {"k1": 0.9, "b": 0.4}}
    tiny_collection.save()
    tuned = index_store.collection_index(tiny_collection)
    assert tuned.path != default.path and "k1=0.9-b=0.4" in tuned.path.name
    assert default.path.exists()  # same corpus version: kept


def test_concurrent_builders_leave_one_complete_index(tiny_collection, tmp_path):
    root = tmp_path / "race"
    builds = []

    def build(staging):
        builds.append(1)
        (staging / "payload").write_text("x" * 1000)

    threads = [threading.Thread(target=index_store.versioned_dir, args=(root, "v1-k", build),
                                kwargs={"keep": lambda name: True}) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1  # the others waited on the lock and found it built
    assert (root / "v1-k" / "payload").read_text() == "x" * 1000
    assert [p.name for p in root.iterdir() if not p.name.endswith(".lock")] == ["v1-k"]


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    root = tmp_path / "failing"

    def build(staging):
        (staging / "half").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        index_store.versioned_dir(root, "v1-k", build, keep=lambda name: True)
    assert [p.name for p in root.iterdir() if not p.name.endswith(".lock")] == []
