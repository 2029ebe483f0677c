"""Spreadsheet-formula injection (issue #8): texts and ids that a spreadsheet would run as a formula,
imported and exported in every format. JSONL keeps text exactly (every line is one JSON object, so
no cell can start with a formula); qrels, whose fields a spreadsheet reads as cells and whose ids
TREC tools match exactly, refuses an id that starts like a formula instead of altering it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate.export.services import ExportFailed, create_snapshot
from annotate.importing import import_files
from annotate.models import Collection, ExportSnapshot

FORMULAS = ['=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]
JSONL_FORMATS = ("listwise", "pointwise", "pairwise", "flagembedding")


def import_beir(tmp_path, slug, *, query_ids, doc_ids, query_text, doc_text) -> Collection:
    """One document per query, graded 3, and one more graded 0 so every format has a line."""
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for i, (query_id, doc_id) in enumerate(zip(query_ids, doc_ids)):
        queries.append(json.dumps({"_id": query_id, "text": query_text(i)}))
        corpus.append(json.dumps({"_id": doc_id, "text": doc_text(i)}))
        corpus.append(json.dumps({"_id": f"plain{i}", "text": "an ordinary document"}))
        qrels += [f"{query_id}\t{doc_id}\t3", f"{query_id}\tplain{i}\t0"]
    folder = tmp_path / slug
    folder.mkdir()
    for name, lines in (("corpus.jsonl", corpus), ("queries.jsonl", queries), ("qrels.tsv", qrels)):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_files(collection_slug=slug, corpus=folder / "corpus.jsonl", queries=folder / "queries.jsonl",
                 qrels=folder / "qrels.tsv")
    return Collection.objects.get(slug=slug)


@pytest.fixture
def formula_texts(db, tmp_path):
    return import_beir(tmp_path, "formulas", query_ids=[f"q{i}" for i in range(len(FORMULAS))],
                       doc_ids=[f"d{i}" for i in range(len(FORMULAS))],
                       query_text=lambda i: FORMULAS[i], doc_text=lambda i: FORMULAS[-1 - i])


@pytest.mark.parametrize("fmt", JSONL_FORMATS)
def test_jsonl_keeps_formula_like_text_exactly_inside_json_strings(formula_texts, fmt):
    snapshot = create_snapshot(collection=formula_texts, format=fmt, params={})
    lines = Path(snapshot.file_path).read_text(encoding="utf-8").splitlines()
    assert lines and all(line.startswith("{") and line.endswith("}") for line in lines)
    records = [json.loads(line) for line in lines]
    texts = json.dumps(records, ensure_ascii=False)
    for formula in FORMULAS:  # exactly as imported: a trainer must see the text it will be asked about
        assert json.dumps(formula, ensure_ascii=False) in texts


def test_qrels_of_formula_like_texts_with_plain_ids_carries_only_the_ids(formula_texts):
    snapshot = create_snapshot(collection=formula_texts, format="qrels", params={})
    lines = Path(snapshot.file_path).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 * len(FORMULAS)
    for line in lines:
        fields = line.split(" ")
        assert len(fields) == 4 and fields[1] == "0" and fields[3] in {"0", "3"}
        assert not any(field[0] in "=+-@\t\r" for field in fields)


@pytest.mark.parametrize("bad_id", ['=HYPERLINK("http://x")', "+A1", "-A1+1", "@SUM(A1)"])
@pytest.mark.parametrize("which", ["query", "doc"])
def test_qrels_refuses_an_id_that_a_spreadsheet_would_run_as_a_formula(db, tmp_path, settings, bad_id, which):
    collection = import_beir(tmp_path, "ids", query_ids=[bad_id if which == "query" else "q1"],
                             doc_ids=[bad_id if which == "doc" else "d1"],
                             query_text=lambda i: "a query", doc_text=lambda i: "a document")
    with pytest.raises(ExportFailed, match=r"starts with .*formula"):
        create_snapshot(collection=collection, format="qrels", params={})
    failed = ExportSnapshot.objects.get(collection=collection, format="qrels")
    assert failed.status == "failed" and bad_id in failed.error and not failed.file_path
    assert list((Path(settings.DATA_DIR) / "exports" / "ids").iterdir()) == []
    out = tmp_path / "out.qrels"
    with pytest.raises(CommandError, match="formula"):  # the command line: one line, non-zero exit
        call_command("export_data", "ids", "--format", "qrels", "--out", str(out), verbosity=0)
    assert not out.exists()
    # The same ids travel unchanged in JSONL, where they are JSON strings.
    snapshot = create_snapshot(collection=collection, format="listwise", params={})
    line = json.loads(Path(snapshot.file_path).read_text(encoding="utf-8"))
    assert bad_id in (line["query_id"], line["candidates"][0]["doc_id"], line["candidates"][1]["doc_id"])


def test_qrels_keeps_ids_that_are_plain_numbers_even_with_a_sign(db, tmp_path):
    collection = import_beir(tmp_path, "numbers", query_ids=["-1", "+2", "3"], doc_ids=["-10", "20.5", "+30"],
                             query_text=lambda i: "a query", doc_text=lambda i: "a document")
    snapshot = create_snapshot(collection=collection, format="qrels", params={})
    lines = set(Path(snapshot.file_path).read_text(encoding="utf-8").splitlines())
    assert {"-1 0 -10 3", "+2 0 20.5 3", "3 0 +30 3"} <= lines
