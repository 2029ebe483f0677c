"""Redis stops while annotators judge: grades still save (the database is the record; Redis only
counts judgments for the agreement report), promptly and on the first try. When Redis is back, the
first judgment that reaches it queues the report the outage missed, and a worker computes it over
every grade, the outage's included. Everything runs against a private redis-server."""
from __future__ import annotations

import time

import pytest
from django.db import connection

from annotate.models import AgreementReport, GuidelineAcknowledgement, Judgment

from ..conftest import WorkerProcess, database_url_for_subprocess, wait_for
from ..workbench.factories import make_annotators, make_collection
from .servers import AnnotatorClient, Gunicorn, PrivateRedis

pytestmark = [pytest.mark.faults, pytest.mark.celery, pytest.mark.slow]
PASSWORD = "pw-123456789"
PROMPT = 3.0  # seconds: a grade must never wait on a dead Redis longer than this


def grade_task(client: AnnotatorClient, slug: str, grade: int) -> list[float]:
    """Take the next task, grade each candidate, finish; returns the seconds each grade took."""
    status, task, attempts = client.post_json(f"/api/collections/{slug}/tasks/next/")
    assert status == 200 and attempts == 1, (status, task, client.seen)
    took = []
    for candidate in task["candidates"]:
        started = time.monotonic()
        status, body, attempts = client.post_json(f"/api/tasks/{task['task']}/judgments/", {
            "candidate": candidate["id"], "grade": grade, "idempotency_key": f"{task['task']}-{candidate['id']}"})
        took.append(time.monotonic() - started)
        assert status == 200 and attempts == 1 and body["created"], (status, body, client.seen)
    status, body, attempts = client.post_json(f"/api/tasks/{task['task']}/finish/")
    assert status == 200 and attempts == 1, (status, body)
    return took


def test_grades_save_while_redis_is_down_and_the_missed_report_is_computed_when_it_is_back(
    transactional_db, settings, tmp_path,
):
    if connection.vendor != "postgresql":
        pytest.skip("gunicorn and the worker need a database they can share (PostgreSQL)")
    collection = make_collection(slug="outage", queries=6, candidates=3, k=2)
    # Far more than this test grades: only the catch-up after the outage can queue a report.
    collection.agreement_every = 1000
    collection.save(update_fields=["agreement_every"])
    users = make_annotators(collection, 2)
    GuidelineAcknowledgement.objects.bulk_create(
        GuidelineAcknowledgement(user=u, version=collection.guideline_version) for u in users)

    redis = PrivateRedis(tmp_path / "redis").start()
    env = {"DATABASE_URL": database_url_for_subprocess(), "REDIS_URL": redis.url, "DATA_DIR": str(settings.DATA_DIR),
           "DJANGO_SETTINGS_MODULE": "tests.faults.server_settings"}
    server = Gunicorn(env=env, log=tmp_path / "gunicorn.log", workers=1, threads=4)
    # The worker runs through the outage: it must reconnect by itself when Redis is back.
    worker = WorkerProcess(redis_url=redis.url, data_dir=settings.DATA_DIR, queues="default", log=tmp_path / "worker.log")
    worker.env["DJANGO_SETTINGS_MODULE"] = "tests.faults.server_settings"
    try:
        server.start()
        worker.start()
        alice, bob = AnnotatorClient(server.port), AnnotatorClient(server.port)
        alice.login("a0", PASSWORD)
        bob.login("a1", PASSWORD)
        grade_task(alice, collection.slug, 2)  # Redis up: counted as usual

        redis.stop()
        outage = grade_task(alice, collection.slug, 3) + grade_task(bob, collection.slug, 1) + \
            grade_task(bob, collection.slug, 0)
        assert max(outage) < PROMPT, f"a grade waited {max(outage):.2f} s on the dead Redis"
        graded = 4 * 3
        assert Judgment.objects.filter(collection=collection, annotator__isnull=False).count() == graded
        assert not AgreementReport.objects.filter(collection=collection).exists()  # no worker saw anything yet

        redis.start()
        time.sleep(1.2)  # the web process's circuit breaker (1 s here) closes again
        # One grade, not a task of three: the catch-up report is queued by this first grade and
        # may be computed at once, so later grades would race it (the report counts what has
        # committed when the worker runs).
        status, task, _ = alice.post_json(f"/api/collections/{collection.slug}/tasks/next/")
        assert status == 200, (status, task)
        status, body, _ = alice.post_json(f"/api/tasks/{task['task']}/judgments/", {
            "candidate": task["candidates"][0]["id"], "grade": 2, "idempotency_key": f"{task['task']}-after"})
        assert status == 200 and body["created"], (status, body)
        graded += 1
        report = wait_for(
            lambda: AgreementReport.objects.filter(collection=collection, n_judgments=graded).first(), timeout=90,
            message=f"the agreement report over all {graded} grades\n{worker.output()[-3000:]}\n{server.output()}")
    finally:
        worker.stop()
        server.stop()
        redis.stop()
    assert report.n_judgments == Judgment.objects.filter(collection=collection, annotator__isnull=False).count()
    assert "agreement report trigger skipped: Redis unavailable" in server.output()
