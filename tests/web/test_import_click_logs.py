"""Click logs through the import page's job (annotate.importing.jobs): taken in after the corpus in
the same transaction, a bad log failing the whole import with file:line."""
from __future__ import annotations

import json

from annotate.importing import execute_import, start_import
from annotate.models import ClickLog, Collection, Judgment

from .conftest import CORPUS, jsonl, upload


def _clicks(rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _searches(n=20):
    return [{"query_id": "cq", "query": "a clicked query",
             "shown": [{"doc_id": d, "position": i} for i, d in enumerate(["d0", "d1"] if k % 2 else ["d1", "d0"], 1)],
             "clicks": [{"doc_id": "d0"}]} for k in range(n)]


def test_an_upload_with_a_corpus_and_a_click_log_imports_both(staff_user):
    job = start_import(collection_slug="web-clicks", created_by=staff_user, files={
        "corpus": upload("corpus.jsonl", jsonl(CORPUS)), "clicks": [upload("clicks.jsonl", _clicks(_searches()))]})
    done = execute_import(job_id=job.pk)
    assert done.status == "done", done.error
    assert done.result["documents"] == len(CORPUS) and done.result["queries"] == 1
    assert done.result["click_labels"] == 2 and done.result["click_logs"]["logs"][0]["searches"] == 20
    assert Judgment.objects.filter(source="clicks").count() == 2
    assert ClickLog.objects.get().imported_by == staff_user


def test_a_bad_click_log_fails_the_import_and_takes_the_corpus_with_it(staff_user):
    bad = _searches(3) + [{"query_id": "cq", "shown": [{"doc_id": "d0", "position": 1}], "clicks": [{"doc_id": "d5"}]}]
    job = start_import(collection_slug="web-clicks", created_by=staff_user, files={
        "corpus": upload("corpus.jsonl", jsonl(CORPUS)), "clicks": [upload("clicks.jsonl", _clicks(bad))]})
    failed = execute_import(job_id=job.pk)
    assert failed.status == "failed"
    assert failed.error == "clicks.jsonl:4: click on 'd5', which this search did not show"
    collection = Collection.objects.get(slug="web-clicks")
    assert not collection.documents.exists() and not ClickLog.objects.exists()


def test_the_import_page_has_a_click_log_field(client, staff_user):
    client.force_login(staff_user)
    html = client.get("/imports/new/").content.decode()
    assert 'name="clicks"' in html and "Click logs" in html


def test_the_import_api_takes_click_logs(client, staff_user):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(staff_user)
    response = api.post("/api/collections/api-clicks/imports/", {
        "corpus": upload("corpus.jsonl", jsonl(CORPUS)), "clicks": [upload("log.jsonl", _clicks(_searches()))]},
        format="multipart")
    assert response.status_code == 202, response.content
    assert execute_import(job_id=response.json()["id"]).result["click_labels"] == 2
