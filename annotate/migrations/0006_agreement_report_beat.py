"""The nightly agreement report, as a django-celery-beat row (editable in the admin afterwards).

- annotate: nightly agreement reports (03:30 every day): a fresh AgreementReport for every active
  collection with judgments added since its last report (annotate/quality_tasks.py).
"""
from django.db import migrations

NAME = "annotate: nightly agreement reports"
TASK = "annotate.quality_tasks.nightly_reports"


def create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC",
    )
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": TASK, "crontab": schedule, "queue": "default", "enabled": True},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0005_adjudication_agreementreport_exportsnapshot_and_more"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
