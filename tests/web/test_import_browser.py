"""In real Chromium: staff upload through the form, and the job page follows the job to its end."""
from __future__ import annotations

import pytest

from annotate.importing import execute_import
from annotate.models import ImportJob

from ..browser.conftest import login
from .conftest import CORPUS, QRELS, QUERIES, jsonl, qrels_tsv

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_job_page_refreshes_itself_until_the_import_is_done(page, staff_user, redis_url, tmp_path):
    files = {"corpus": jsonl(CORPUS), "queries": jsonl(QUERIES), "qrels": qrels_tsv(QRELS)}
    names = {"corpus": "corpus.jsonl", "queries": "queries.jsonl", "qrels": "qrels.tsv"}
    for field, content in files.items():
        (tmp_path / names[field]).write_bytes(content)
    login(page, "staff", "staff-pass-123")
    page.click("text=Import data")
    page.fill("input[name=collection]", "browser")
    for field in files:
        page.set_input_files(f"input[name={field}]", str(tmp_path / names[field]))
    page.click("button:has-text('Import')")
    page.wait_for_url("**/imports/*/")
    assert page.text_content("#job-status") == "pending"

    # The worker's part, run here: the page only learns of it through its polling.
    execute_import(job_id=ImportJob.objects.get().pk)
    page.wait_for_function("document.getElementById('job-status').textContent === 'done'")
    assert page.get_attribute("#job-bar", "style").replace(" ", "") == "width:100%;"
    assert page.text_content("[data-total=judgments]") == str(len(QRELS))
    assert page.is_hidden("#job-error")
