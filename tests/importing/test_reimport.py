"""A re-import updates what changed, records grade changes as revisions, and never duplicates."""
from __future__ import annotations

import pytest

from annotate.models import Collection, Document, Judgment, JudgmentRevision

from .conftest import args_for, database_snapshot, import_data, write_jsonl, write_text

pytestmark = pytest.mark.django_db


def test_importing_the_same_files_twice_changes_nothing(small_collection):
    first = import_data("small", *args_for(small_collection))
    before = database_snapshot()
    second = import_data("small", *args_for(small_collection))

    assert second == first
    assert database_snapshot() == before  # no new rows, no touched timestamps, corpus_version kept


def test_a_changed_qrels_grade_updates_the_judgment_and_records_a_revision(small_collection):
    import_data("small", *args_for(small_collection))
    small_collection["qrels"].write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td2\t2\n")
    totals = import_data("small", *args_for(small_collection))

    assert totals["judgments"] == 3
    judgment = Judgment.objects.get(candidate__query__external_id="q1", candidate__document__external_id="d1")
    assert judgment.grade == 1
    revision = JudgmentRevision.objects.get()
    assert (revision.judgment, revision.old_grade, revision.new_grade) == (judgment, 3, 1)
    assert revision.changed_by_source == "qrels:qrels.tsv" and revision.changed_by is None


def test_a_changed_text_updates_the_document_and_bumps_the_corpus_version_once(small_collection, tmp_path):
    import_data("small", "--corpus", str(small_collection["corpus"]))
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [
        {"_id": "d1", "title": "Flea", "text": "A flea lives about 100 days."},
        {"_id": "d2", "text": "Concrete flooring costs vary."},
        {"_id": "d4", "text": "A new passage."},
    ])
    old_hash = Document.objects.get(external_id="d1").content_hash
    totals = import_data("small", "--corpus", str(corpus))

    flea = Document.objects.get(external_id="d1")
    assert totals["documents"] == 4
    assert flea.text == "A flea lives about 100 days." and flea.content_hash != old_hash
    assert Collection.objects.get(slug="small").corpus_version == 2


def test_a_labels_row_with_the_same_text_keeps_the_corpus_title(small_collection, tmp_path):
    import_data("small", *args_for(small_collection))
    labels = write_jsonl(tmp_path / "l.jsonl", [{"query_id": "q1", "doc_id": "d1", "doc": "A flea lives up to a year.", "label": 2}])
    import_data("small", "--labels", str(labels))

    assert Document.objects.get(external_id="d1").title == "Flea"
    assert Collection.objects.get(slug="small").corpus_version == 1


def test_a_run_reimported_with_new_ranks_updates_only_its_own_source(small_collection, tmp_path):
    import_data("small", *args_for(small_collection))
    run = write_text(tmp_path / "run.trec", "q1 Q0 d1 2 11 bm25\n")
    import_data("small", "--run", str(run))

    sources = Judgment.objects.get(candidate__query__external_id="q1", candidate__document__external_id="d1").candidate.sources
    assert sources == {"qrels": {}, "run:bm25": {"rank": 2, "score": 11.0}}
