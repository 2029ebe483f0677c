"""python manage.py machine_judge COLLECTION [--sync] [--json]: the machine judge's grades of every
candidate from the model that serves (the base model before any promotion), as the training page's
"Judge now" asks for them: queued for a worker, or with --sync run in this process."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Collection
from training.judge_runs import JudgeRunAlreadyActive, execute_judge_run, request_served_judge


class Command(BaseCommand):
    help = "Grade every candidate of a collection with the machine judge (queued for a worker, or --sync here)."

    def add_arguments(self, parser):
        parser.add_argument("collection", help="collection slug")
        parser.add_argument("--sync", action="store_true", help="judge in this process instead of a worker")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the run as JSON on the last line")

    def handle(self, *args, collection, sync, as_json, **options):
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"collection {collection!r} does not exist")
        try:
            run = request_served_judge(collection=target, enqueue=not sync)
        except JudgeRunAlreadyActive as error:
            raise CommandError(str(error)) from None
        model = f"model version {run.version_id}" if run.version_id else f"the base model ({run.model_path})"
        if not sync:
            self.stdout.write(f"machine judge run {run.pk} of {target.slug} queued with {model}; "
                              f"the training page (/c/{target.slug}/training/) follows it")
        else:
            run = execute_judge_run(run_id=run.pk)
            result = run.result or {}
            self.stdout.write(f"machine judge run {run.pk} {run.status} with {model}: "
                              f"calibration {result.get('calibration') or '-'}, {result.get('added', 0)} grades added, "
                              f"{result.get('changed', 0)} revised" + (f"; {run.note}" if run.note else ""))
            if run.status != run.Status.DONE:
                raise CommandError(f"machine judge run {run.pk} ended {run.status}: {run.error}")
        if as_json:
            self.stdout.write(json.dumps({"run": run.pk, "collection": target.slug, "status": run.status,
                                          "version": run.version_id, "model": run.model_path, "result": run.result or {}},
                                         ensure_ascii=False))
