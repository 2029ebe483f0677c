"""Fuzz the REST API with schemathesis at a large budget (the suite runs the same harness small).

Generates requests from the served OpenAPI schema for every operation, as an annotator and as
staff, and calls the Django WSGI app in-process on a scratch PostgreSQL database. Counts a 5xx, or
a 4xx whose body is not JSON naming the problem, as a failure.

    .venv/bin/python bench/fuzz.py --cases 20000          # about 370 per operation and role
    .venv/bin/python bench/fuzz.py --cases 2000 --seed 7

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/rs_fuzz; the
database is dropped and recreated). Exit status 1 when a problem was found. Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/rs_fuzz"

from bench._load_setup import recreate_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=20000, help="total generated requests (all operations, both roles)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    args = parser.parse_args()

    recreate_database(args.database)
    os.environ["DATABASE_URL"] = args.database
    os.environ["ALLOWED_HOSTS"] = "localhost,127.0.0.1"
    # The test settings' fast password hasher: every fuzzed request authenticates with HTTP Basic,
    # and PBKDF2 per request would make the hasher, not the API, the thing being measured.
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    from tests.api_fuzz.harness import fuzz, seed_world

    call_command("migrate", verbosity=0)
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # one line per 4xx otherwise
    seeded = seed_world()
    started = time.monotonic()
    last = [started]

    def progress(report):
        if time.monotonic() - last[0] > 10:
            last[0] = time.monotonic()
            print(f"  {report.cases} cases, {len(report.problems)} problems", file=sys.stderr, flush=True)

    report = fuzz(WSGIHandler(), seeded, total_cases=args.cases, seed=args.seed, on_case=progress)
    seconds = time.monotonic() - started
    summary = report.summary()
    per_operation = report.per_operation
    print(f"{summary['cases']} cases in {seconds:.0f} s ({per_operation} per operation and role, seed {args.seed})")
    print("statuses: " + ", ".join(f"{code}: {n}" for code, n in summary["statuses"].items()))
    print(report.describe() or "no 5xx, every 4xx named its problem")
    print(json.dumps({"cases": summary["cases"], "seconds": round(seconds, 1), "per_operation_and_role": per_operation,
                      "statuses": summary["statuses"], "problems": summary["problems"],
                      "unique_problems": summary["unique_problems"]}))
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
