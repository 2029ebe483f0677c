"""The Celery app. Queues: `default` (imports, agreement, export), `mining`, `training`."""
import logging
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("relevance_studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


def enqueue_when_a_worker_starts(task):
    """Queue ``task`` (no arguments) each time a worker is ready; returns the task, so it can
    decorate it. For the recovery sweeps: a worker that starts is often the replacement of one
    that died mid-job, so it looks at once rather than at the next beat. Queued rather than run
    here, so only a worker of the task's queue runs it; a broker that is not reachable yet is
    logged, not raised (the beat, or the next worker, sends it)."""

    def enqueue(sender=None, **kwargs):
        try:
            task.delay()
        except Exception:
            logger.warning("could not enqueue %s at worker start", task.name, exc_info=True)

    worker_ready.connect(enqueue, weak=False)  # the closure has no other reference
    return task
