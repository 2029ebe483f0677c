"""Agreement at 1,000,000 judgments on PostgreSQL: alpha against the `krippendorff` package, and the
full report (every figure, per annotator, per query) read from the database.

Data: 250,000 candidates (2,500 queries x 100), each judged by 4 of 20 annotators (picked at random),
a grade from a hidden true grade with 25% neighbouring errors, a time per judgment, 1% skips on
top (skips are read by the report, never graded) and 2,000 gold candidates. Loaded with COPY into a
fresh database (default postgres://postgres@127.0.0.1:5432/rs_bench_agree, dropped and re-created).

    .venv/bin/python bench/agreement.py [--database-url URL] [--judgments 1000000] [--repeat 3]

Measured in the same run:
- alpha alone: `annotate.agreement.krippendorff_alpha(ratings, "ordinal")` against
  `krippendorff.alpha(reliability_data=<20 x 250,000 matrix>, level_of_measurement="ordinal",
  value_domain=[0, 1, 2, 3])` on the same grades (the best of --repeat each; inputs built untimed);
- the full report: `annotate.quality.report.compute_report` (one SQL read, alpha at 3 levels with
  1,000 bootstrap resamples, Fleiss, Cohen per pair, percent agreement, per annotator, per query).
Acceptance: alpha <= 1.5x krippendorff's time; full report <= 20 s. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/rs_bench_agree"
ANNOTATORS, JUDGES, PER_QUERY, GOLD = 20, 4, 100, 2000


def fresh_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        sys.exit("bench/agreement.py runs on PostgreSQL: --database-url postgres://...")
    name = parsed.path.lstrip("/")
    with psycopg.connect(urlunparse(parsed._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    sys.path.insert(0, str(REPO))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def copy_rows(cursor, table: str, columns: str, rows) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def load(n_judgments: int, seed: int = 0) -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
    """The collection, and its graded judgments as (candidate pk, annotator pk, grade) arrays."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from annotate.grades import GRADE_MAX, GRADE_MIN
    from annotate.models import Candidate, Collection, Document, Judgment, Query
    from annotate.splits import split_for

    rng = np.random.default_rng(seed)
    n_candidates = n_judgments // JUDGES
    n_queries = n_candidates // PER_QUERY
    now = timezone.now()
    collection = Collection.objects.create(slug="bench", name="bench", overlap_k=JUDGES, adjudication_alpha=0.4)
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"bench{i:02d}") for i in range(ANNOTATORS))
    user_pks = np.array([u.pk for u in users])
    with transaction.atomic(), connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        copy_rows(cursor, Query._meta.db_table, "collection_id, external_id, text, metadata, content_hash, split, "
                  "holders, shuffle_key, created_at, updated_at",
                  ((collection.pk, f"q{q}", f"query {q}", "{}", str(q), split_for(f"q{q}"), 0, q, now, now)
                   for q in range(n_queries)))
        copy_rows(cursor, Document._meta.db_table, "collection_id, external_id, title, text, metadata, content_hash, "
                  "created_at, updated_at",
                  ((collection.pk, f"d{d}", "", f"document {d}", "{}", str(d), now, now) for d in range(n_candidates)))
        cursor.execute(f"SELECT id FROM {Query._meta.db_table} WHERE collection_id = %s ORDER BY id", [collection.pk])
        query_pks = np.array([row[0] for row in cursor.fetchall()])
        cursor.execute(f"SELECT id FROM {Document._meta.db_table} WHERE collection_id = %s ORDER BY id", [collection.pk])
        doc_pks = np.array([row[0] for row in cursor.fetchall()])
        truth = rng.integers(GRADE_MIN, GRADE_MAX + 1, n_candidates)
        gold = np.zeros(n_candidates, dtype=bool)
        gold[rng.choice(n_candidates, GOLD, replace=False)] = True
        copy_rows(cursor, Candidate._meta.db_table, "collection_id, query_id, document_id, sources, is_gold, gold_grade, "
                  "coverage, created_at",
                  ((collection.pk, int(query_pks[c // PER_QUERY]), int(doc_pks[c]), "{}", bool(gold[c]),
                    int(truth[c]) if gold[c] else None, JUDGES, now) for c in range(n_candidates)))
        cursor.execute(f"SELECT id FROM {Candidate._meta.db_table} WHERE collection_id = %s ORDER BY id", [collection.pk])
        candidate_pks = np.array([row[0] for row in cursor.fetchall()])
        # 4 distinct annotators per candidate: the first 4 of a random permutation of 20
        judges = np.argsort(rng.random((n_candidates, ANNOTATORS)), axis=1)[:, :JUDGES]
        grades = truth[:, None] + np.where(rng.random((n_candidates, JUDGES)) < 0.25,
                                           rng.choice([-1, 1], (n_candidates, JUDGES)), 0)
        grades = np.clip(grades, GRADE_MIN, GRADE_MAX)
        seconds = rng.gamma(2.0, 6.0, (n_candidates, JUDGES)).round(2)
        item, annotator, grade = (np.repeat(candidate_pks, JUDGES), user_pks[judges.reshape(-1)], grades.reshape(-1))
        spent = seconds.reshape(-1)
        copy_rows(cursor, Judgment._meta.db_table, "collection_id, candidate_id, annotator_id, source, grade, skipped, "
                  "skip_reason, flagged, withdrawn, note, seconds_spent, guideline_version, created_at, updated_at",
                  ((collection.pk, int(c), int(a), "", int(g), False, "", False, False, "", float(s), "v1", now, now)
                   for c, a, g, s in zip(item.tolist(), annotator.tolist(), grade.tolist(), spent.tolist())))
        # 1% skips by a fifth judge (so they never collide with a grade)
        skipped = rng.choice(n_candidates, n_candidates // 100, replace=False)
        fifth = np.argsort(rng.random((n_candidates, ANNOTATORS)), axis=1)
        extra = [next(int(x) for x in fifth[c] if x not in set(judges[c].tolist())) for c in skipped.tolist()]
        copy_rows(cursor, Judgment._meta.db_table, "collection_id, candidate_id, annotator_id, source, grade, skipped, "
                  "skip_reason, flagged, withdrawn, note, seconds_spent, guideline_version, created_at, updated_at",
                  ((collection.pk, int(candidate_pks[c]), int(user_pks[a]), "", None, True, "unclear", False, False, "",
                    3.0, "v1", now, now) for c, a in zip(skipped.tolist(), extra)))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return collection, item, annotator, grade


def best_of(repeat: int, function) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - started)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    fresh_database(args.database_url)
    setup_django(args.database_url)
    import krippendorff

    from annotate.agreement import Ratings, krippendorff_alpha
    from annotate.quality.report import compute_report

    started = time.perf_counter()
    collection, item, annotator, grade = load(args.judgments)
    load_seconds = time.perf_counter() - started

    ratings = Ratings.from_arrays(item, annotator, grade)
    matrix = ratings.reliability_matrix()
    ours_s, ours = best_of(args.repeat, lambda: krippendorff_alpha(ratings, "ordinal"))
    ref_s, reference = best_of(args.repeat, lambda: krippendorff.alpha(
        reliability_data=matrix, level_of_measurement="ordinal", value_domain=[0, 1, 2, 3]))

    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        report = compute_report(collection, bootstrap=1000)
        runs.append(time.perf_counter() - t0)
    report_s = min(runs)
    per_annotator = report["per_annotator"]
    result = {
        "judgments": report["n_judgments"],
        "skips": report["overall"]["skips"],
        "items": report["overall"]["n_items"],
        "annotators": report["overall"]["n_annotators"],
        "load_seconds": round(load_seconds, 2),
        "alpha_ordinal": ours,
        "krippendorff_alpha_ordinal": float(reference),
        "alpha_abs_diff": abs(ours - float(reference)),
        "alpha_seconds": round(ours_s, 4),
        "krippendorff_seconds": round(ref_s, 4),
        "alpha_time_ratio": round(ours_s / ref_s, 3),
        "report_seconds": round(report_s, 2),
        "report_runs_seconds": [round(r, 2) for r in runs],
        "report_queries_with_alpha": report["overall"]["queries"]["with_alpha"],
        "report_queries_below": report["overall"]["queries"]["below_threshold"],
        "report_pairs": len(report["per_pair"]),
        "median_reliability": float(np.median([a["reliability"] for a in per_annotator])),
        "acceptance": {"alpha_within_1.5x": ours_s <= 1.5 * ref_s, "report_within_20s": report_s <= 20.0},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
