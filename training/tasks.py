"""Celery tasks of the training queue (routed by their ``training.`` names, config/settings.py).

Tasks take ids and call one service; both are safe to run twice (the run is claimed with a
conditional UPDATE; retraining starts nothing while a run of the collection is active).
"""
from __future__ import annotations

from celery import shared_task


@shared_task(name="training.tasks.train_run", acks_late=True)
def train_run(run_id: int) -> str | None:
    from .services import execute_training_run

    run = execute_training_run(run_id=run_id)
    return run.status if run else None


@shared_task(name="training.tasks.retrain_collection")
def retrain_collection(collection_id: int) -> int | None:
    from .retraining import retrain_collection as retrain

    run = retrain(collection_id=collection_id)
    return run.pk if run else None
