"""python manage.py mine COLLECTION --method bm25|dense|hybrid [--depth N] [--negatives N] [--sync]"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Collection
from mining import services
from mining.pipeline import METHODS, MiningParamsError


class Command(BaseCommand):
    help = "Mine hard-negative candidates for a collection (enqueued on the mining queue, or --sync here)."

    def add_arguments(self, parser):
        parser.add_argument("collection", help="collection slug")
        parser.add_argument("--method", required=True, choices=METHODS)
        parser.add_argument("--depth", type=int, default=None, help="pool depth per query (default 50)")
        parser.add_argument("--negatives", type=int, default=None, help="negatives offered per query (default 10)")
        parser.add_argument("--params", default=None,
                            help='more settings as JSON, e.g. \'{"range_min": 2, "margin": 0.05, "dedup": 0.8}\'')
        parser.add_argument("--sync", action="store_true", help="mine in this process, with a progress bar")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the job as JSON on the last line")

    def handle(self, *args, collection, method, depth, negatives, params, sync, as_json, **options):
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"collection {collection!r} does not exist")
        extra = None
        if params:
            try:
                extra = json.loads(params)
            except ValueError as exc:
                raise CommandError(f"--params: not valid JSON: {exc}") from None
        try:
            job = services.start_mining(collection=target, method=method, depth=depth, negatives=negatives,
                                        params=extra, created_by=None, enqueue=not sync)
        except MiningParamsError as exc:
            raise CommandError(str(exc)) from None
        if not sync:
            self.stdout.write(f"mining job {job.pk} enqueued: {job.queries_total} queries of {target.slug}, {method}")
            self.stdout.write(f"watch it at /mining/jobs/{job.pk}/ (staff) or GET /api/mining/jobs/{job.pk}/")
        else:
            from tqdm import tqdm

            with tqdm(total=job.queries_total, unit="query", desc=f"mining {target.slug}",
                      disable=options.get("verbosity", 1) == 0) as bar:
                job = services.run_job_inline(job, progress=bar.update)
            for warning in job.warnings:
                self.stderr.write(f"warning: {warning}")
            self.stdout.write(f"mining job {job.pk} {job.status}: {job.queries_done}/{job.queries_total} queries, "
                              f"{job.candidates_added} candidates added")
            if job.status != job.Status.DONE:
                raise CommandError(f"mining job {job.pk} ended {job.status}: {job.error}")
        if as_json:
            self.stdout.write(json.dumps({
                "job": job.pk, "collection": target.slug, "method": method, "status": job.status,
                "queries_total": job.queries_total, "queries_done": job.queries_done,
                "candidates_added": job.candidates_added, "warnings": job.warnings,
            }, ensure_ascii=False))

