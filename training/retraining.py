"""Scheduled retraining: a django-celery-beat PeriodicTask per collection runs
``training.tasks.retrain_collection``, which exports a listwise snapshot and starts a training run
once at least ``RetrainPolicy.min_new_judgments`` human judgments arrived since the snapshot of the
collection's last run. Never two runs of one collection at once (checked here, and guaranteed by
TrainingRun's one-active-run constraint). The snapshot and the judgment count are the export's
(annotate.export.services).
"""
from __future__ import annotations

import json

from django.db import transaction

from annotate.export.services import create_snapshot, human_judgment_count

from .config import train_config
from .models import RetrainPolicy, TrainingRun
from .services import RunAlreadyActive, start_training_run

RETRAIN_TASK = "training.tasks.retrain_collection"
DEFAULT_EVERY_HOURS = 24


def new_judgments_since_last_run(collection) -> int:
    last = TrainingRun.objects.filter(collection=collection).select_related("snapshot").order_by("-created_at").first()
    return human_judgment_count(collection) - (last.snapshot.n_judgments if last else 0)


def retrain_collection(*, collection_id: int) -> TrainingRun | None:
    """Export and start a run if the policy says it is due; None if nothing was due."""
    policy = RetrainPolicy.objects.select_related("collection").filter(collection_id=collection_id).first()
    if policy is None or not policy.enabled:
        return None
    collection = policy.collection
    if TrainingRun.objects.filter(collection=collection, status__in=TrainingRun.ACTIVE).exists():
        return None
    if new_judgments_since_last_run(collection) < policy.min_new_judgments:
        return None
    params = policy.train_params()
    train_config(params)  # a policy with a bad training value fails here, before exporting for nothing
    snapshot = create_snapshot(collection=collection, format="listwise", params=dict(policy.params.get("export", {})))
    try:
        return start_training_run(snapshot=snapshot, params=params, trigger=TrainingRun.Trigger.SCHEDULE)
    except RunAlreadyActive:
        return None  # a manual run started between our check and now


@transaction.atomic
def sync_schedule(*, policy: RetrainPolicy, every_hours: int | None = None):
    """Create (or refresh) the policy's PeriodicTask: enabled as the policy is, every ``every_hours``
    hours (a new task: DEFAULT_EVERY_HOURS; an existing one keeps its schedule unless given one)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    def interval_of(hours: int):
        return IntervalSchedule.objects.get_or_create(every=hours, period=IntervalSchedule.HOURS)[0]

    task = policy.periodic_task
    if task is None:
        task, _ = PeriodicTask.objects.get_or_create(
            name=f"retrain {policy.collection.slug}",
            defaults={"task": RETRAIN_TASK, "interval": interval_of(every_hours or DEFAULT_EVERY_HOURS),
                      "queue": "training"},
        )
        policy.periodic_task = task
        RetrainPolicy.objects.filter(pk=policy.pk).update(periodic_task=task)
    if every_hours is not None:
        task.interval, task.crontab = interval_of(every_hours), None
    task.task = RETRAIN_TASK
    task.args = json.dumps([policy.collection_id])
    task.enabled = policy.enabled
    task.save()
    return task


def every_hours_of(policy: RetrainPolicy) -> int | None:
    """The policy's schedule in hours, when it is an hourly interval (None for a crontab set in the admin)."""
    task = policy.periodic_task
    if task is None or task.interval is None:
        return None
    interval = task.interval
    return {"hours": interval.every, "days": interval.every * 24}.get(interval.period)
