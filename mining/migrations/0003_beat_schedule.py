"""The mining beat schedule, as django-celery-beat rows (editable in the admin afterwards).

- mining: tend running jobs (every minute): gives back chunks of dead workers, finishes jobs.
- mining: pre-mine (every 5 minutes): keeps queries ready for active annotators.
"""
from django.db import migrations

TASKS = [
    ("mining: tend running jobs", "mining.tasks.tend_running_jobs", 60),
    ("mining: pre-mine", "mining.tasks.premine", 300),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in TASKS:
        schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": schedule, "queue": "mining", "enabled": True},
        )


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mining", "0002_chunks_and_warnings"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
