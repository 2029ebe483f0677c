"""The Celery app. Queues: `default` (imports, agreement, export), `mining`, `training`."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("relevance_studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
