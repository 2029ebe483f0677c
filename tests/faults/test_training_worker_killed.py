"""A worker killed with SIGKILL in the middle of a training run: the run is found at once by the
next worker (its advisory lock died with the killed worker's session), sent again, resumes from its
last checkpoint and finishes -- one ModelVersion, and the promoted model untouched throughout."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from django.db import connection

from annotate.models import Collection
from training import registry
from training.models import ModelVersion, TrainingRun
from training.services import run_output_dir, start_training_run

from ..conftest import WorkerProcess, wait_for
from ..training_loop.conftest import FAST_RUN_PARAMS, make_snapshot, snapshot_file

pytestmark = [pytest.mark.faults, pytest.mark.celery, pytest.mark.slow]


def tree_digest(directory) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_a_run_whose_worker_is_killed_resumes_on_the_next_worker_and_never_touches_the_promoted_model(
    redis_url, transactional_db, settings, tiny_model, tmp_path,
):
    if connection.vendor != "postgresql":
        pytest.skip("worker liveness is a PostgreSQL advisory lock; the workers need a shared PostgreSQL database")
    collection = Collection.objects.create(slug="kill", name="kill")
    served = shutil.copytree(tiny_model, tmp_path / "served-model")
    promoted = registry.promote(version=ModelVersion.objects.create(collection=collection, path=str(served)))
    served_digest = tree_digest(served)
    snapshot = make_snapshot(collection, snapshot_file(tmp_path / "s.jsonl"))
    # 12 steps an epoch, 600 in all: long enough that the kill lands mid-run however fast the
    # machine (the tiny model runs 60 steps in well under a second on a quiet one); a checkpoint
    # every 25 steps; a margin no model reaches: never promoted.
    # No distillation: one trainer, so the checkpoints resumed are the labels' run.
    params = {**FAST_RUN_PARAMS, "epochs": 50, "checkpoint_every": 25, "promotion_margin": 0.99, "distil": False}

    first = WorkerProcess(redis_url=redis_url, data_dir=settings.DATA_DIR, queues="training",
                          log=tmp_path / "worker1.log").start()
    second = None
    try:
        run = start_training_run(snapshot=snapshot, base_model=str(tiny_model), params=params)
        wait_for(lambda: TrainingRun.objects.get(pk=run.pk).step >= 30, timeout=120, interval=0.05,
                 message=f"training past its first checkpoint\n{first.output()[-3000:]}")
        first.kill()
        killed = TrainingRun.objects.get(pk=run.pk)
        assert killed.status == "running" and killed.attempts == 1 and killed.step < killed.total_steps
        assert (run_output_dir(killed) / "candidates" / "cross-encoder" / "checkpoints").is_dir()

        second = WorkerProcess(redis_url=redis_url, data_dir=settings.DATA_DIR, queues="training",
                               log=tmp_path / "worker2.log").start()
        done = wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, status__in=["done", "failed"]).first(),
                        timeout=300, message=f"the run to end on the second worker\n{second.output()[-3000:]}")
    finally:
        first.kill()
        if second is not None:
            second.stop()
    assert done.status == "done", done.error
    assert done.attempts == 2 and done.step == done.total_steps == 600
    log = second.output()
    assert "training.tasks.recover_lost_runs" in log and "requeued" in log
    assert ModelVersion.objects.filter(run=done).count() == 1
    # Resumed, not restarted: the model it wrote continued from a checkpoint taken before the kill.
    info = json.loads((Path(ModelVersion.objects.get(run=done).path) / "training_info.json").read_text())
    assert 25 <= info["resumed_from_step"] < done.total_steps and info["resumed_from_step"] % 25 == 0
    assert not done.promoted and done.metrics["decision"]["promoted"] is False
    assert registry.promoted_version(collection=collection).pk == promoted.pk
    assert tree_digest(served) == served_digest
