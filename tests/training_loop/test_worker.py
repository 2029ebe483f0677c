"""A training run on a real Celery worker consuming the training queue: cancel mid-run leaves the
promoted model alone; a run to the end promotes by margin."""
from __future__ import annotations

import pytest
from django.db import connection

from annotate.models import Collection
from training import registry
from training.models import ModelVersion, TrainingRun
from training.services import request_cancel, start_training_run

from ..conftest import wait_for
from .conftest import FAST_RUN_PARAMS, make_snapshot, snapshot_file

pytestmark = [pytest.mark.celery, pytest.mark.slow]


def test_worker_trains_cancels_and_promotes(celery_worker_process, tiny_model, trained_model, tmp_path):
    if connection.vendor == "sqlite":
        pytest.skip("the worker process needs a database it can share (PostgreSQL)")
    collection = Collection.objects.create(slug="w", name="w")
    old = registry.promote(version=ModelVersion.objects.create(collection=collection, path=str(trained_model)))
    snapshot = make_snapshot(collection, snapshot_file(tmp_path / "s.jsonl"))

    long_run = start_training_run(snapshot=snapshot, base_model=str(tiny_model), params={**FAST_RUN_PARAMS, "epochs": 500})
    wait_for(lambda: TrainingRun.objects.get(pk=long_run.pk).step > 0, timeout=90,
             message=f"training to start\n{celery_worker_process.output()[-3000:]}")
    running = TrainingRun.objects.get(pk=long_run.pk)
    assert running.status == "running" and running.total_steps == 6000 and running.eta_seconds is not None
    request_cancel(run=running)
    wait_for(lambda: TrainingRun.objects.get(pk=long_run.pk).status == "cancelled", timeout=30, message="cancel")
    assert registry.promoted_version(collection=collection).pk == old.pk

    run = start_training_run(snapshot=snapshot, base_model=str(tiny_model), params={**FAST_RUN_PARAMS, "promotion_margin": -0.9})
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status in ("done", "failed"), timeout=90,
             message=f"the run to finish\n{celery_worker_process.output()[-3000:]}")
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert run.promoted and registry.promoted_version(collection=collection).run_id == run.pk
    assert "training.tasks.train_run" in celery_worker_process.output()
