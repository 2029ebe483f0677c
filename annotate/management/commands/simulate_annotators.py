"""`python manage.py simulate_annotators COLLECTION (--annotators N | --profiles LIST) [--noise P] [--seed S]
[--random-share R] [--overlap K]`.

Simulated annotators (users `sim-<collection>-<i>`, marked simulated) judge the candidates that have a
reference grade; see annotate/simulation.py for the profiles, the noise model, the overlap, determinism
and idempotence.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotate.models import Collection
from annotate.simulation import (
    NEWCOMER_SHARE,
    SimulationError,
    SimulationParams,
    parse_profiles,
    simulate_annotators,
)


class Command(BaseCommand):
    help = "Add judgments from simulated annotators with known behaviour to a collection's reference-graded candidates."

    def add_arguments(self, parser):
        parser.add_argument("collection", help="collection slug")
        parser.add_argument("--annotators", type=int, help="how many simulated annotators (1..1000); with --profiles, "
                            "absent or the list's length")
        parser.add_argument("--profiles", help="comma-separated profiles, one per annotator: honest (errs with "
                            "probability --noise), plus1, minus1, random, constant[:G] (always G, default 0), "
                            f"newcomer[:F] (honest, judging only a share F of its pairs, default {NEWCOMER_SHARE}); "
                            "default: all honest")
        parser.add_argument("--noise", type=float, help="probability of an error of an honest annotator, 0..1 "
                            "(needed unless every profile ignores it)")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument("--random-share", type=float, default=0.0,
                            help="share of the errors that are a uniformly random other grade instead of a neighbour")
        parser.add_argument("--overlap", type=int, help="judgments per candidate: each candidate goes to this many "
                            "of the annotators (default: all of them)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON on the last line")

    def handle(self, *args, collection, annotators, profiles, noise, seed, random_share, overlap, **options):
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"no collection '{collection}'")
        try:
            params = self._params(annotators, profiles, noise, seed, random_share, overlap)
            params.check()
        except SimulationError as error:
            raise CommandError(str(error)) from None
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

    @staticmethod
    def _params(annotators, profiles, noise, seed, random_share, overlap) -> SimulationParams:
        if profiles is None:
            if annotators is None:
                raise SimulationError("--annotators or --profiles is required")
            parsed = None
        else:
            parsed = parse_profiles(profiles)
            annotators = len(parsed) if annotators is None else annotators
        needs_noise = parsed is None or any(p.kind in ("honest", "newcomer") for p in parsed)
        if noise is None and needs_noise:
            raise SimulationError("--noise is required for honest and newcomer annotators")
        return SimulationParams(annotators=annotators, noise=0.0 if noise is None else noise, seed=seed,
                                random_share=random_share, profiles=parsed, overlap=overlap)
