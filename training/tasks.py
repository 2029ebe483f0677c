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
def recover_lost_runs() -> dict[str, dict[int, str]]:
    """Beat (every minute) and worker start-up: training and machine judge runs of dead workers
    sent again or failed, lost messages resent."""
    from .judge_runs import recover_lost_judge_runs
    from .recovery import recover_lost_runs as recover

    return {"training": recover(), "machine judge": recover_lost_judge_runs()}



@shared_task(name="training.tasks.distil_miner", acks_late=True)
def distil_miner(version_id: int) -> str | None:
    """After a promotion: the promoted model's miner for dense mining (training.miner)."""
    from .miner import distil_miner as distil
    from .models import ModelVersion

    version = ModelVersion.objects.select_related("collection").filter(pk=version_id).first()
    return str(distil(version=version)) if version is not None else None


@shared_task(name="training.tasks.run_machine_judge", acks_late=True)
def machine_judge(run_id: int) -> str | None:
    """A machine judge run (training.judge_runs): the grades of the model it names, or cancelled
    when another model serves by now; safe to run twice (the run is claimed once)."""
    from .judge_runs import execute_judge_run

    run = execute_judge_run(run_id=run_id)
    return run.status if run else None
