"""`python manage.py export_data COLLECTION --format listwise|pointwise|pairwise|qrels|flagembedding
--out F [--split train|dev|test|all] [filters...] [--json]`

Exports like every other surface (an ExportSnapshot with its file under DATA_DIR), then copies the
file to --out atomically (a temporary file beside it, renamed when complete). A progress bar goes to
stderr. A bad filter value ends with one line naming it and a non-zero exit; nothing is written.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotate.export.filters import FORMATS, SPLIT_CHOICES, ExportParamsError
from annotate.export.services import ExportFailed, create_snapshot
from annotate.models import Candidate, Collection


class error(CommandError):  # noqa: N801 -- printed as "error: <message>", like import_data
    pass


# (option, parameter, type, help); every one maps to a parameter of annotate/export/filters.py.
FILTER_OPTIONS = [
    ("--method", "method", str, "label: median (default), mean, majority or adjudicated"),
    ("--priors", "priors", str, "imported labels: fallback (default), always or never"),
    ("--prior-reliability", "prior_reliability", str, "reliability of imported labels, 0..1 (default 1)"),
    ("--tau", "tau", str, "evidence scale of the weight (default 1)"),
    ("--min-judgments", "min_judgments", str, "drop pairs with fewer grades"),
    ("--min-weight", "min_weight", str, "drop pairs with a lower weight, 0..1"),
    ("--min-query-alpha", "min_query_alpha", str, "drop queries whose alpha in the latest agreement report is lower"),
    ("--guideline-version", "guideline_version", str, "only judgments made under this guideline version"),
    ("--since", "since", str, "only judgments last changed on or after this ISO date/date-time"),
    ("--until", "until", str, "only judgments last changed on or before this ISO date/date-time"),
    ("--positive-grade", "positive_grade", str, "grade from which a candidate is positive (default 2)"),
    ("--max-pairs-per-query", "max_pairs_per_query", str, "pairwise: at most this many pairs per query (default 100)"),
]


class Command(BaseCommand):
    help = "Export a collection's judgments as a training file (a recorded snapshot, copied to --out)."

    def add_arguments(self, parser):
        parser.add_argument("collection", help="collection slug")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, type=Path, help="where to write the file")
        parser.add_argument("--split", default="all", choices=SPLIT_CHOICES)
        for option, dest, kind, text in FILTER_OPTIONS:
            parser.add_argument(option, dest=dest, type=kind, help=text)
        parser.add_argument("--no-gold", action="store_true", help="leave gold candidates out")
        parser.add_argument("--no-simulated", action="store_true", help="leave simulated annotators' judgments out")
        parser.add_argument("--only-with-positive", action="store_true",
                            help="only queries with at least one candidate labelled >= the positive grade")
        parser.add_argument("--json", action="store_true", help="print the snapshot as JSON on the last line")

    def handle(self, *args, collection, format, out, split, **options):
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise error(f"no collection '{collection}'")
        if out.is_dir():
            raise error(f"--out {out} is a directory")
        if not out.parent.is_dir():
            raise error(f"--out: directory {out.parent} does not exist")
        params = {"split": split}
        params.update({dest: options[dest] for _, dest, _, _ in FILTER_OPTIONS if options[dest] is not None})
        if options["no_gold"]:
            params["include_gold"] = False
        if options["no_simulated"]:
            params["include_simulated"] = False
        if options["only_with_positive"]:
            params["only_with_positive"] = True
        bar = tqdm(total=Candidate.objects.filter(collection=target).count(), unit="candidates", desc="export",
                   disable=options["verbosity"] == 0)
        try:
            snapshot = create_snapshot(collection=target, format=format, params=params, progress=bar.update)
        except ExportParamsError as failure:
            raise error(str(failure)) from None
        except ExportFailed as failure:
            raise error(f"export snapshot {failure.snapshot.pk} failed: {failure}") from None
        finally:
            bar.close()
        _copy_atomically(Path(snapshot.file_path), out)
        summary = {"snapshot": snapshot.pk, "format": snapshot.format, "out": str(out), "sha256": snapshot.sha256,
                   "size_bytes": snapshot.size_bytes, **{k: snapshot.counts.get(k) for k in ("queries", "candidates", "lines")}}
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(f"{target.slug}: {summary['lines']} lines ({summary['queries']} queries, "
                              f"{summary['candidates']} candidates) -> {out} [snapshot {snapshot.pk}, sha256 {snapshot.sha256}]")


def _copy_atomically(source: Path, out: Path) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as target, open(source, "rb") as origin:
            shutil.copyfileobj(origin, target, 1024 * 1024)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
