"""`python manage.py simulate_annotators COLLECTION --annotators N --noise P [--seed S] [--random-share R]`.

N simulated annotators (users `sim-<collection>-<i>`, marked simulated) judge every candidate that
has a reference grade; see annotate/simulation.py for the noise model, determinism and idempotence.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotate.models import Collection
from annotate.simulation import SimulationError, SimulationParams, simulate_annotators


class Command(BaseCommand):
    help = "Add judgments from N simulated annotators with known noise to a collection's reference-graded candidates."

    def add_arguments(self, parser):
        parser.add_argument("collection", help="collection slug")
        parser.add_argument("--annotators", type=int, required=True, help="how many simulated annotators (1..1000)")
        parser.add_argument("--noise", type=float, required=True, help="probability of an error, 0..1")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument("--random-share", type=float, default=0.0,
                            help="share of the errors that are a uniformly random other grade instead of a neighbour")
        parser.add_argument("--json", action="store_true", help="print the report as JSON on the last line")

    def handle(self, *args, collection, annotators, noise, seed, random_share, **options):
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"no collection '{collection}'")
        params = SimulationParams(annotators=annotators, noise=noise, seed=seed, random_share=random_share)
        bar = tqdm(unit="judgments", disable=options["verbosity"] == 0, desc="simulate")
        try:
            report = simulate_annotators(collection=target, params=params, progress=bar.update)
        except SimulationError as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            self.stdout.write(f"{target.slug}: {report.judgments_added} judgments added by {len(report.annotators)} "
                              f"simulated annotators ({report.created_annotators} new) over "
                              f"{report.reference_pairs} reference-graded candidates")
