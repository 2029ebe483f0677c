"""End to end on a real worker and real Redis: upload through the API, the worker imports, the job ends."""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.urls import reverse

from annotate.importing.jobs import ProgressWriter
from annotate.models import Collection, ImportJob
from annotate.selectors import collection_totals

from ..conftest import wait_for
from .conftest import CORPUS, QRELS, QUERIES, qrels_tsv, small_upload, upload

pytestmark = pytest.mark.django_db(transaction=True)


def finished(job_id: int, worker) -> ImportJob:
    def done():
        job = ImportJob.objects.get(pk=job_id)
        return job if job.status in ("done", "failed") else None
    try:
        return wait_for(done, timeout=60, message=f"import job {job_id} to finish")
    except AssertionError:
        raise AssertionError(worker.output()[-3000:]) from None


@pytest.mark.celery
def test_an_upload_is_imported_by_a_real_worker_and_a_bad_one_changes_nothing(
        client, staff_user, celery_worker_process):
    client.force_login(staff_user)
    response = client.post(reverse("api-collection-imports", args=["e2e"]), small_upload())
    assert response.status_code == 202, response.content
    job = finished(response.json()["id"], celery_worker_process)
    assert job.status == "done", job.error
    totals = collection_totals(Collection.objects.get(slug="e2e"))
    assert job.result == totals
    assert (totals["documents"], totals["queries"], totals["candidates"], totals["judgments"]) == (
        len(CORPUS), len(QUERIES), len(QRELS), len(QRELS))
    polled = client.get(response.json()["url"]).json()
    assert polled["status"] == "done" and polled["progress"] == 1.0 and polled["result"] == totals

    bad = qrels_tsv([("q0", "d2", 1), ("q0", "nowhere", 2)])  # line 3: an unknown document
    response = client.post(reverse("api-collection-imports", args=["e2e"]),
                           {"corpus": upload("more.jsonl", b'{"_id": "d99", "text": "new"}\n'),
                            "qrels": upload("qrels.tsv", bad)})
    assert response.status_code == 202
    job = finished(response.json()["id"], celery_worker_process)
    assert job.status == "failed"
    assert job.error.startswith("qrels.tsv:3: ") and "nowhere" in job.error
    assert collection_totals(Collection.objects.get(slug="e2e")) == totals


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has one writer: no progress while importing")
def test_progress_is_visible_while_the_import_transaction_is_open(collection, staff_user):
    job = ImportJob.objects.create(collection=collection, created_by=staff_user, bytes_total=100)
    writer = ProgressWriter(job_id=job.pk, interval=0)
    try:
        with transaction.atomic():  # as the importer's own transaction would be
            writer(40, 100)
            assert ImportJob.objects.get(pk=job.pk).bytes_done == 40
            transaction.set_rollback(True)
    finally:
        writer.close()
    assert ImportJob.objects.get(pk=job.pk).bytes_done == 40  # committed on its own, whatever the import does
