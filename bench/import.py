"""Import throughput on kuake-qtr-train (23,880 documents, 6,897 queries, 24,174 graded pairs).

Imports the dataset into a throwaway collection, then imports it again (the idempotent no-op
path), and prints rows/s = (documents + queries + judgments) / seconds with per-phase timings.
The anchor, measured in the same run, is reading and validating the same files without the
database (the readers alone): `vs_parse` says how many times slower the full import is.

    .venv/bin/python bench/import.py                    # a temporary SQLite database
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_import .venv/bin/python bench/import.py

On DATABASE_URL the collection `bench-import-<pid>` is created and deleted afterwards (that
database must be migrated). Last line: one JSON object with the figures.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO.parent / "shared" / "datasets" / "kuake-qtr-train"


def setup_django() -> tuple[str, Path | None]:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    scratch = None
    if not os.environ.get("DATABASE_URL"):
        scratch = Path(tempfile.mkdtemp(prefix="bench-import-"))
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.sqlite3'}"
    import django

    django.setup()
    if scratch is not None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    from django.db import connection

    return connection.vendor, scratch


def parse_only(files: dict) -> tuple[int, float]:
    from annotate.importing.beir import read_beir
    from annotate.importing.qrels import read_qrels

    started = time.perf_counter()
    rows = sum(1 for _ in read_beir(files["corpus"])) + sum(1 for _ in read_beir(files["queries"], with_title=False))
    rows += sum(1 for _ in read_qrels(files["qrels"]))
    return rows, time.perf_counter() - started


def timed_import(slug: str, files: dict):
    from annotate.importing import run_import

    started = time.perf_counter()
    report = run_import(collection_slug=slug, **files)  # commits on return
    return report, time.perf_counter() - started


def main() -> None:
    if not DATASET.is_dir():
        sys.exit(f"dataset not found: {DATASET}")
    vendor, scratch = setup_django()
    from annotate.models import Collection

    files = {"corpus": DATASET / "corpus.jsonl", "queries": DATASET / "queries.jsonl", "qrels": DATASET / "qrels.tsv"}
    slug = f"bench-import-{os.getpid()}"
    try:
        parsed_rows, parse_seconds = parse_only(files)
        first, first_seconds = timed_import(slug, files)
        again, again_seconds = timed_import(slug, files)
    finally:
        started = time.perf_counter()
        Collection.objects.filter(slug=slug).delete()
        delete_seconds = time.perf_counter() - started
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    totals = first.totals
    rows = totals["documents"] + totals["queries"] + totals["judgments"]
    figures = {
        "bench": "import", "dataset": "kuake-qtr-train", "database": vendor,
        "documents": totals["documents"], "queries": totals["queries"],
        "candidates": totals["candidates"], "judgments": totals["judgments"],
        "seconds": round(first_seconds, 3), "rows_per_s": round(rows / first_seconds),
        "phases_s": {k: round(v, 3) for k, v in first.seconds.items()},
        "reimport_seconds": round(again_seconds, 3), "reimport_rows_per_s": round(rows / again_seconds),
        "reimport_unchanged": again.totals == totals and not any(again.counts.values()),
        "parse_only_rows_per_s": round(parsed_rows / parse_seconds),
        "vs_parse": round(first_seconds / parse_seconds, 2),
        "delete_seconds": round(delete_seconds, 3),
    }
    print(f"{vendor}: imported {rows} rows (documents+queries+judgments) in {first_seconds:.2f}s "
          f"= {figures['rows_per_s']} rows/s; phases {figures['phases_s']}")
    print(f"re-import (no changes): {again_seconds:.2f}s; readers alone: {parse_seconds:.2f}s "
          f"({figures['parse_only_rows_per_s']} rows/s); import = {figures['vs_parse']}x the readers")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
