"""The export job through the REST API on a real Celery worker (committed data: transactional)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.urls import reverse

from annotate.models import ExportSnapshot
from tests.conftest import wait_for


@pytest.mark.django_db(transaction=True)
def test_an_export_job_started_through_the_api_runs_on_the_worker(celery_worker_process, graded_collection,
                                                                   staff_user, client):
    graded_collection()
    client.force_login(staff_user)
    start = client.post(reverse("api-export-start", kwargs={"slug": "small"}),
                        {"format": "listwise", "params": {"split": "train"}}, content_type="application/json")
    assert start.status_code == 202
    snapshot_id = start.json()["id"]
    status_url = reverse("api-export", kwargs={"snapshot_id": snapshot_id})
    final = wait_for(lambda: (client.get(status_url).json() if client.get(status_url).json()["status"] in ("done", "failed")
                              else None), timeout=90, message=f"export snapshot {snapshot_id}\n{celery_worker_process.output()[-2000:]}")
    assert final["status"] == "done", final["error"]
    body = b"".join(client.get(reverse("api-export-file", kwargs={"snapshot_id": snapshot_id})).streaming_content)
    assert hashlib.sha256(body).hexdigest() == final["sha256"] == ExportSnapshot.objects.get(pk=snapshot_id).sha256
    assert Path(ExportSnapshot.objects.get(pk=snapshot_id).file_path).read_bytes() == body
    assert "annotate.export.run_export" in celery_worker_process.output()
