"""A worker killed with SIGKILL in the middle of an import: the import's transaction dies with it
(nothing half-imported), the next worker finds the job at start-up (its advisory lock went with the
killed session), runs it again, and the collection ends with every document exactly once."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from annotate.importing import start_import
from annotate.models import Collection, ImportJob

from ..conftest import WorkerProcess, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.celery, pytest.mark.slow]
DOCUMENTS = 20_000


def corpus_upload() -> SimpleUploadedFile:
    lines = (json.dumps({"_id": f"d{i}", "title": f"title {i}", "text": f"document number {i} " + "word " * 20})
             for i in range(DOCUMENTS))
    return SimpleUploadedFile("corpus.jsonl", ("\n".join(lines) + "\n").encode())


def test_an_import_whose_worker_is_killed_is_run_again_by_the_next_worker(
    transactional_db, redis_url, settings, staff_user, tmp_path,
):
    if connection.vendor != "postgresql":
        pytest.skip("worker liveness is a PostgreSQL advisory lock; the workers need a shared PostgreSQL database")
    first = WorkerProcess(redis_url=redis_url, data_dir=settings.DATA_DIR, queues="default",
                          log=tmp_path / "worker1.log").start()
    second = None
    try:
        job = start_import(collection_slug="big", files={"corpus": corpus_upload()}, created_by=staff_user)
        wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status="running", bytes_done__gt=0).exists(),
                 timeout=90, interval=0.05, message=f"the import under way\n{first.output()[-3000:]}")
        first.kill()
        killed = ImportJob.objects.get(pk=job.pk)
        assert killed.status == "running" and killed.bytes_done < killed.bytes_total, "the import ended before the kill"
        assert not Collection.objects.get(slug="big").documents.exists()  # its transaction died with it

        second = WorkerProcess(redis_url=redis_url, data_dir=settings.DATA_DIR, queues="default",
                               log=tmp_path / "worker2.log").start()
        done = wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).first(),
                        timeout=120, message=f"the import to end on the next worker\n{second.output()[-3000:]}")
    finally:
        first.kill()
        if second is not None:
            second.stop()
    assert done.status == "done", done.error
    assert done.result["documents"] == DOCUMENTS == Collection.objects.get(slug="big").documents.count()
    assert "annotate.tasks.recover_lost_imports" in second.output() and "requeued" in second.output()
