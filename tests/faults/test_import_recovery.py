"""Imports left 'running' by a dead worker (its database session, and with it the job's advisory
lock, gone): sent again once and then finished, or failed after a second loss; a live worker's
job is left alone; a job whose message never reached the broker is sent again."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotate.importing import execute_import, recover_lost_imports, start_import
from annotate.models import Collection, ImportJob
from config.liveness import WorkerHold

from ..web.conftest import small_upload

pytestmark = [pytest.mark.faults, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _postgresql(redis_url):
    # redis_url: a requeued job is sent to the test's own Redis database, never the configured one.
    if connection.vendor != "postgresql":
        pytest.skip("worker liveness is a PostgreSQL advisory lock")


def lost_mid_import(job: ImportJob) -> None:
    """What a worker killed mid-import leaves: the job running, its transaction rolled back, no lock."""
    ImportJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now(), bytes_done=123)


def test_an_import_whose_worker_died_is_run_again_and_completes(staff_user):
    job = start_import(collection_slug="lost", files=small_upload(), created_by=staff_user)
    lost_mid_import(job)
    assert recover_lost_imports() == {job.pk: "requeued"}
    job.refresh_from_db()
    assert job.status == "pending" and job.result == {"restarts": 1} and job.bytes_done == 0
    finished = execute_import(job_id=job.pk)
    assert finished.status == "done" and finished.result["documents"] > 0
    assert Collection.objects.get(slug="lost").documents.count() == finished.result["documents"]


def test_an_import_lost_twice_fails_saying_why(staff_user):
    job = start_import(collection_slug="lost2", files=small_upload(), created_by=staff_user)
    lost_mid_import(job)
    recover_lost_imports()
    lost_mid_import(job)  # the second attempt dies too
    assert recover_lost_imports() == {job.pk: "failed"}
    job.refresh_from_db()
    assert job.status == "failed" and "killed or lost" in job.error and "start the import again" in job.error


def test_a_running_import_of_a_live_worker_is_left_alone_and_a_duplicate_message_backs_off(staff_user):
    job = start_import(collection_slug="live", files=small_upload(), created_by=staff_user)
    worker = WorkerHold("import", job.pk)
    assert worker.acquire()
    try:
        assert execute_import(job_id=job.pk) is None  # the duplicate sees the live holder
        lost_mid_import(job)
        assert recover_lost_imports() == {}
        assert ImportJob.objects.get(pk=job.pk).status == "running"
    finally:
        worker.release()


def test_a_job_whose_message_was_lost_is_sent_again(staff_user, redis_url):
    import redis

    job = start_import(collection_slug="unsent", files=small_upload(), created_by=staff_user)
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    broker = redis.Redis.from_url(redis_url)
    before = broker.llen("default")
    assert recover_lost_imports() == {job.pk: "resent"}
    assert broker.llen("default") == before + 1
    broker.delete("default")
