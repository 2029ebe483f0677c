"""Helpers for the importer tests: write small files, run import_data, snapshot the database."""
from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from annotate.models import (
    Candidate,
    Collection,
    Document,
    Judgment,
    JudgmentRevision,
    Query,
)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def import_data(collection: str, *args: str) -> dict:
    """Run `manage.py import_data COLLECTION ARGS --json` and return the totals from the last line."""
    out = StringIO()
    call_command("import_data", collection, *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def database_snapshot() -> dict:
    """Every importer-touched row, as plain values: equal snapshots mean an unchanged database."""
    return {
        model.__name__: sorted(map(repr, model.objects.values_list()))
        for model in (Collection, Document, Query, Candidate, Judgment, JudgmentRevision)
    }


@pytest.fixture
def small_collection(tmp_path):
    """Files for a tiny collection: two queries, three documents, qrels and a run."""
    files = tmp_path / "small"
    files.mkdir()
    return {
        "corpus": write_jsonl(files / "corpus.jsonl", [
            {"_id": "d1", "title": "Flea", "text": "A flea lives up to a year.", "url": "http://x/1"},
            {"_id": "d2", "text": "Concrete flooring costs vary."},
            {"_id": 3, "text": "Declaratory judgment defined."},
        ]),
        "queries": write_jsonl(files / "queries.jsonl", [
            {"_id": "q1", "text": "how long does a flea live"},
            {"_id": "q2", "text": "cost of concrete floors", "lang": "en"},
        ]),
        "qrels": write_text(files / "qrels.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t3\nq1\td2\t0\nq2\td2\t2\n"),
        "run": write_text(files / "run.trec", "q1 Q0 d1 1 12.5 bm25\nq1 Q0 3 2 7.25 bm25\nq2 Q0 d2 1 9 bm25\n"),
    }


def args_for(files: dict) -> list[str]:
    args = []
    for kind in ("corpus", "queries", "qrels", "run"):
        if kind in files:
            args += [f"--{kind}", str(files[kind])]
    return args
REPO_ROOT = Path(__file__).resolve().parents[2]
