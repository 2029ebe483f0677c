"""`python manage.py agreement COLLECTION --json` or `python manage.py agreement --ratings F.csv
[--scale MIN-MAX] --json`: inter-annotator agreement of a collection's human grades or of a CSV file.

CSV: header `item,annotator,grade`, an empty grade is a missing judgment, `--scale` (default 0-3)
fixes the grade scale. The COLLECTION form takes subset filters: `--query EXTERNAL_ID`,
`--annotators USER1,USER2` (an annotator pair), `--since DATE` / `--until DATE` (when the grade was
given, both included) and `--guideline-version V`. A bad argument or file ends with one line `error: <file>:<line>: <reason>`
and a non-zero exit. `--json` prints the result as one JSON object on the last line of stdout.
"""
from __future__ import annotations

import json
from dataclasses import replace

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotate.agreement import (
    AgreementResult,
    RatingsError,
    Scale,
    compute_agreement,
    parse_scale,
)
from annotate.agreement.ratings_csv import RatingsFileError, read_ratings_csv
from annotate.quality.scope import AgreementScope, ScopeError

SUBSET = ("query", "annotators", "since", "until", "guideline_version")


class error(CommandError):  # noqa: N801
    """Django prints a failed command as "<class name>: <message>": this reads `error: ...`."""


class Command(BaseCommand):
    help = "Krippendorff's alpha, Fleiss' and Cohen's kappa and percent agreement of a collection or a CSV file."

    def add_arguments(self, parser):
        parser.add_argument("collection", nargs="?", help="collection slug (its people's grades)")
        parser.add_argument("--ratings", help="CSV file with the header item,annotator,grade")
        parser.add_argument("--scale", help=f"grade scale MIN-MAX for --ratings (default {Scale()})")
        parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the alpha intervals")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
        parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")
        subset = parser.add_argument_group("subset of a COLLECTION")
        subset.add_argument("--query", help="one query (its external id)")
        subset.add_argument("--annotators", help="an annotator pair: two usernames, comma-separated")
        subset.add_argument("--since", help="grades given on or after this date (YYYY-MM-DD or ISO date-time)")
        subset.add_argument("--until", help="grades given on or before this date (YYYY-MM-DD or ISO date-time)")
        subset.add_argument("--guideline-version", help="grades given under this guideline version")

    def handle(self, *args, collection, ratings, scale, bootstrap, seed, **options):
        if (collection is None) == (ratings is None):
            raise error("give either a COLLECTION or --ratings F.csv (not both)")
        if bootstrap < 0:
            raise error(f"--bootstrap {bootstrap}: must be 0 or more")
        filters = {name: options[name] for name in SUBSET if options.get(name)}
        if collection is not None:
            if scale is not None:
                raise error(f"--scale applies to --ratings only; a collection's grades are {Scale()}")
            try:
                scope = AgreementScope.parse(**filters)
            except ScopeError as failure:
                raise error(str(failure)) from None
            result = self._collection_agreement(collection, bootstrap, seed, scope)
        else:
            if filters:
                flags = ", ".join("--" + name.replace("_", "-") for name in filters)
                raise error(f"{flags}: subset filters apply to a COLLECTION, not to --ratings")
            try:
                grade_scale = parse_scale(scale) if scale is not None else Scale()
            except RatingsError as failure:
                raise error(f"--scale: {failure}") from None
            try:
                judged = read_ratings_csv(ratings, scale=grade_scale)
            except RatingsFileError as failure:
                raise error(str(failure)) from None
            result = compute_agreement(judged, bootstrap=bootstrap, seed=seed)
        self._print(result, as_json=options["json"])

    def _collection_agreement(self, slug: str, bootstrap: int, seed: int, scope: AgreementScope) -> AgreementResult:
        from annotate.models import Collection
        from annotate.quality.ratings import collection_ratings

        try:
            collection = Collection.objects.get(slug=slug)
        except Collection.DoesNotExist:
            raise error(f"no collection {slug!r}") from None
        try:
            judged = collection_ratings(collection, scope)
        except ScopeError as failure:
            raise error(str(failure)) from None
        result = compute_agreement(judged, bootstrap=bootstrap, seed=seed)
        # Per-pair kappas name people, not user ids.
        names = dict(get_user_model().objects.filter(
            pk__in={p.annotator_a for p in result.pairs} | {p.annotator_b for p in result.pairs}
        ).values_list("pk", "username"))
        return replace(result, pairs=[
            replace(pair, annotator_a=names.get(int(pair.annotator_a), pair.annotator_a),
                    annotator_b=names.get(int(pair.annotator_b), pair.annotator_b))
            for pair in result.pairs
        ])

    def _print(self, result: AgreementResult, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(result.as_json(), ensure_ascii=False))
            return
        self.stdout.write(
            f"{result.n_judgments} grades, {result.n_items} items, {result.n_annotators} annotators, scale {result.scale}"
        )
        for name in ("krippendorff_alpha_ordinal", "krippendorff_alpha_interval", "krippendorff_alpha_nominal",
                     "fleiss_kappa", "cohen_kappa_quadratic_mean", "percent_agreement", "within_one_agreement"):
            value = getattr(result, name)
            shown = "undefined" if value is None else f"{value:.4f}"
            interval = getattr(result, name.replace("krippendorff_alpha", "alpha") + "_ci95", None)
            if interval:
                shown += f"  (95% CI {interval[0]:.4f} to {interval[1]:.4f})"
            self.stdout.write(f"  {name}: {shown}")
