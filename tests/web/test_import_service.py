"""execute_import, run in-process: done with totals, failed with file:line and nothing written, twice harmless."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from annotate.importing import execute_import, start_import
from annotate.importing.uploads import safe_file_name
from annotate.models import Collection, Document, ImportJob, Judgment
from annotate.selectors import collection_totals

from .conftest import CORPUS, QRELS, QUERIES, qrels_tsv, small_upload, upload


def queued(slug: str, files: dict, user) -> ImportJob:
    return start_import(collection_slug=slug, files=files, created_by=user)


def test_a_pending_job_runs_to_done_with_the_collections_totals(staff_user):
    job = queued("svc", small_upload(), staff_user)
    finished = execute_import(job_id=job.pk)
    assert finished.status == "done" and finished.error == ""
    assert finished.result == collection_totals(Collection.objects.get(slug="svc"))
    assert finished.result["documents"] == len(CORPUS) and finished.result["queries"] == len(QUERIES)
    assert finished.result["judgments"] == len(QRELS)
    assert finished.bytes_done == finished.bytes_total > 0 and finished.progress == 1.0
    assert finished.started_at and finished.finished_at
    # The judgment source is named after the uploaded file, as the command names it after its path.
    assert set(Judgment.objects.values_list("source", flat=True)) == {"qrels:qrels.tsv"}
    assert not (Path(settings.DATA_DIR) / "uploads" / str(job.pk)).exists()  # kept only until the run


def test_running_a_job_twice_imports_once(staff_user):
    job = queued("svc", small_upload(), staff_user)
    execute_import(job_id=job.pk)
    done_at = ImportJob.objects.get(pk=job.pk).finished_at
    assert execute_import(job_id=job.pk) is None
    assert ImportJob.objects.get(pk=job.pk).finished_at == done_at


def test_a_bad_line_fails_the_job_with_file_and_line_and_writes_nothing(staff_user):
    execute_import(job_id=queued("svc", small_upload(), staff_user).pk)
    before = collection_totals(Collection.objects.get(slug="svc"))
    bad = qrels_tsv([("q0", "d5", 1), ("q1", "d1", 7)])  # line 3: a grade outside 0..3
    job = queued("svc", {"corpus": upload("corpus.jsonl", b'{"_id": "new", "text": "added"}\n'),
                         "qrels": upload("bad-qrels.tsv", bad)}, staff_user)
    failed = execute_import(job_id=job.pk)
    assert failed.status == "failed" and failed.result == {}
    assert failed.error.startswith("bad-qrels.tsv:3: ") and "7" in failed.error
    assert collection_totals(Collection.objects.get(slug="svc")) == before
    assert not Document.objects.filter(external_id="new").exists()


@pytest.mark.parametrize("name,expected", [
    ("qrels.tsv", "qrels.tsv"), ("C:\\Users\\me\\run 1.trec", "run_1.trec"), ("../../etc/passwd", "passwd"),
    ("..", "labels"), (".hidden.jsonl", "hidden.jsonl"), ("标注.jsonl", "标注.jsonl"), ("a;b|c.tsv", "a_b_c.tsv"),
    ("x" * 300 + ".jsonl", "x" * 114 + ".jsonl"),
])
def test_upload_names_are_reduced_to_a_safe_base_name(name, expected):
    assert safe_file_name(name, fallback="labels") == expected
