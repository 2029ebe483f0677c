"""Celery tasks of the training queue (routed by their ``training.`` names, config/settings.py).

Tasks take ids and call one service; all are safe to run twice (the run is claimed with a
conditional UPDATE; retraining starts nothing while a run of the collection is active; recovery
changes a run only if it is still in the state it was found in).
"""
from __future__ import annotations

from celery import shared_task

from config.celery import enqueue_when_a_worker_starts


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


@enqueue_when_a_worker_starts
@shared_task(name="training.tasks.recover_lost_runs", acks_late=True)
def recover_lost_runs() -> dict[int, str]:
    """Beat (every minute) and worker start-up: runs of dead workers sent again or failed."""
    from .recovery import recover_lost_runs as recover

    return recover()



@shared_task(name="training.tasks.distil_miner", acks_late=True)
def distil_miner(version_id: int) -> str | None:
    """After a promotion: the promoted model's miner for dense mining (training.miner)."""
    from .miner import distil_miner as distil
    from .models import ModelVersion

    version = ModelVersion.objects.select_related("collection").filter(pk=version_id).first()
    return str(distil(version=version)) if version is not None else None


@shared_task(name="training.tasks.machine_judge", acks_late=True)
def machine_judge(collection_id: int, version_id: int | None = None) -> dict | None:
    """The machine judge's grades from the promoted version (or the base model with none); safe to
    run twice (the second run revises nothing) and a no-op when another version serves by now."""
    from annotate.models import Collection

    from .machine_judge import judge_collection
    from .models import ModelVersion

    collection = Collection.objects.filter(pk=collection_id).first()
    if collection is None:
        return None
    model_dir = None
    if version_id is not None:
        version = ModelVersion.objects.filter(pk=version_id, collection=collection, is_promoted=True).first()
        if version is None:
            return None  # superseded: the newer promotion queues its own judge
        model_dir = version.path
    return vars(judge_collection(collection=collection, model_dir=model_dir))
