"""The recovery sweep's rules, on real PostgreSQL sessions (the 'live worker' is a second session
holding the run's advisory lock): what is sent again, what fails, and what a superseded attempt
may no longer write."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotate.models import Collection
from config.liveness import WorkerHold
from training import registry
from training.models import ModelVersion, TrainingRun
from training.recovery import recover_lost_runs
from training.services import (
    RunTakenOver,
    _ProgressReporter,
    _record,
    execute_training_run,
    run_output_dir,
)

from ..training_loop.conftest import make_snapshot, snapshot_file

pytestmark = [pytest.mark.faults, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _postgresql(redis_url):
    # redis_url: a requeued run is sent to the test's own Redis database, never the configured one.
    if connection.vendor != "postgresql":
        pytest.skip("worker liveness is a PostgreSQL advisory lock")


@pytest.fixture
def collection():
    return Collection.objects.create(slug="rec", name="rec")


def running_run(collection, tmp_path, *, attempts=1, seen_ago=timedelta(seconds=1), **fields) -> TrainingRun:
    snapshot = make_snapshot(collection, snapshot_file(tmp_path / f"s{attempts}.jsonl"))
    now = timezone.now()
    return TrainingRun.objects.create(collection=collection, snapshot=snapshot, status="running", attempts=attempts,
                                      started_at=now - seen_ago, heartbeat_at=now - seen_ago, **fields)


@pytest.fixture
def live_worker():
    """Another database session holding a run's lock, as a running worker does."""
    holds = []

    def hold(run):
        held = WorkerHold("training", run.pk)
        assert held.acquire()
        holds.append(held)
        return held

    yield hold
    for held in holds:
        held.release()


def test_a_run_whose_worker_session_is_gone_is_sent_again_once_then_fails(collection, tmp_path, redis_url):
    run = running_run(collection, tmp_path, attempts=1)
    assert recover_lost_runs() == {run.pk: "requeued"}
    run.refresh_from_db()
    assert run.status == "pending" and "attempt 1 stopped with its worker" in run.error

    again = running_run(Collection.objects.create(slug="rec2", name="rec2"), tmp_path, attempts=2)
    out_dir = run_output_dir(again)
    out_dir.mkdir(parents=True)
    (out_dir / "partial.bin").write_bytes(b"half a model")
    assert recover_lost_runs() == {again.pk: "failed"}
    again.refresh_from_db()
    assert again.status == "failed" and again.finished_at is not None
    assert "killed or lost" in again.error and "2 attempts" in again.error
    assert not out_dir.exists()


def test_a_run_with_a_live_worker_is_left_alone_until_its_heartbeat_is_stale(collection, tmp_path, live_worker, settings):
    run = running_run(collection, tmp_path, seen_ago=timedelta(seconds=5))
    live_worker(run)
    assert recover_lost_runs() == {}
    settings.TRAINING_STALE_AFTER = 3  # seconds: the worker's last beat is older than that now
    assert recover_lost_runs() == {run.pk: "failed"}
    run.refresh_from_db()
    assert run.status == "failed" and "hung or cut off" in run.error
    # When the hung worker wakes up, its next progress write is refused: it stops, writing nothing.
    with pytest.raises(RunTakenOver):
        _ProgressReporter(run.pk, attempt=1).progress(step=5, total_steps=10, loss=0.1, eta_seconds=1, epoch=0)


def test_a_cancel_requested_run_of_a_dead_worker_ends_cancelled(collection, tmp_path):
    run = running_run(collection, tmp_path, cancel_requested=True)
    assert recover_lost_runs() == {run.pk: "cancelled"}


def test_a_duplicate_message_backs_off_while_a_live_worker_holds_the_run(collection, tmp_path, live_worker):
    run = running_run(collection, tmp_path)
    TrainingRun.objects.filter(pk=run.pk).update(status="pending")
    live_worker(run)
    assert execute_training_run(run_id=run.pk) is None
    assert TrainingRun.objects.get(pk=run.pk).status == "pending"


def test_a_superseded_attempt_can_neither_create_a_version_nor_promote(collection, tmp_path):
    run = running_run(collection, tmp_path, attempts=1)
    stale = TrainingRun.objects.select_related("collection").get(pk=run.pk)
    TrainingRun.objects.filter(pk=run.pk).update(attempts=2)  # recovered and claimed again meanwhile
    outcome = {"metrics": {"new": {"ndcg@10": 1.0}, "bm25": {"ndcg@10": 0.0}}, "steps": 1, "loss": 0.1,
               "promoted_version": None}
    with pytest.raises(RunTakenOver):
        _record(stale, tmp_path / "stale-out", outcome)
    assert not ModelVersion.objects.filter(collection=collection).exists()
    assert registry.promoted_version(collection=collection) is None


def test_a_pending_run_whose_message_was_lost_is_sent_again_once_per_period(collection, tmp_path, redis_url, settings):
    import redis

    run = running_run(collection, tmp_path)
    TrainingRun.objects.filter(pk=run.pk).update(status="pending", heartbeat_at=timezone.now() - timedelta(hours=1))
    broker = redis.Redis.from_url(redis_url)
    before = broker.llen("training")
    assert recover_lost_runs() == {run.pk: "resent"}
    assert broker.llen("training") == before + 1
    assert recover_lost_runs() == {}  # sent a moment ago: not again before TRAINING_RESEND_AFTER
    broker.delete("training")
