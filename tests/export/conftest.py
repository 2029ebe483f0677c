"""Fixtures of the export tests: small graded collections written as BEIR files and imported."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from annotate.importing import import_files
from annotate.models import Collection


def write_beir(directory: Path, *, queries: int, docs_per_query: int, seed: int = 0,
               query_text=lambda i: f"query {i}", doc_text=lambda q, d: f"document {d} for query {q}") -> dict:
    """corpus/queries/qrels files with random grades 0..3; returns the paths."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    corpus, query_lines, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for q in range(queries):
        query_lines.append(json.dumps({"_id": f"q{q:03d}", "text": query_text(q)}))
        for d in range(docs_per_query):
            doc_id = f"d{q:03d}-{d:02d}"
            corpus.append(json.dumps({"_id": doc_id, "text": doc_text(q, d)}))
            qrels.append(f"q{q:03d}\t{doc_id}\t{rng.randint(0, 3)}")
    paths = {"corpus": directory / "corpus.jsonl", "queries": directory / "queries.jsonl", "qrels": directory / "qrels.tsv"}
    paths["corpus"].write_text("\n".join(corpus) + "\n")
    paths["queries"].write_text("\n".join(query_lines) + "\n")
    paths["qrels"].write_text("\n".join(qrels) + "\n")
    return paths


@pytest.fixture
def graded_collection(db, tmp_path):
    """A collection 'small' of 8 queries x 6 documents, each pair graded by qrels."""
    def make(slug: str = "small", *, queries: int = 8, docs_per_query: int = 6, seed: int = 0, **texts) -> Collection:
        paths = write_beir(tmp_path / slug, queries=queries, docs_per_query=docs_per_query, seed=seed, **texts)
        import_files(collection_slug=slug, **paths)
        return Collection.objects.get(slug=slug)
    return make
