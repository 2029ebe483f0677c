"""Training runs survive a dead worker: an attempt counter (fences writes of an older attempt), a
heartbeat timestamp, and a beat row that recovers runs left behind (training/recovery.py).

- training: recover lost runs (every minute): a run whose worker died goes back to the queue once,
  then fails; a pending run whose message was lost is sent again.
"""
from django.db import migrations, models

NAME = "training: recover lost runs"
TASK = "training.tasks.recover_lost_runs"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": TASK, "interval": schedule, "queue": "training", "enabled": True},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("training", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="trainingrun",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(create, remove),
    ]
