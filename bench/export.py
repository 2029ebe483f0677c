"""Listwise export on PostgreSQL: candidates/s and peak RSS at 1,000,000 judgments, and the same at
100,000 (the anchor, measured in the same run) to show memory does not grow with the collection.

Each collection: queries of 100 candidates, one document per candidate (~300 characters), a
reference grade per candidate (a qrels judgment, bulk-loaded with COPY), and 4 simulated annotators
(`simulate_annotators`, noise 0.2) judging every candidate: 25,000 candidates = 100,000 people's
judgments, and 250,000 candidates = 1,000,000. Each export runs in a fresh subprocess that reports
its own peak RSS (VmHWM, which starts afresh at exec), so the two peaks are comparable.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_export .venv/bin/python bench/export.py [--sizes 100000,1000000]

A scratch database `<that database>_bench_<pid>` is created next to it, migrated, and dropped at
the end. Acceptance: >= 50,000 candidates/s at 1M and peak RSS at 1M <= 1.2x the peak at 100k.
Last line: one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

REPO = Path(__file__).resolve().parent.parent
ANNOTATORS = 4
CANDIDATES_PER_QUERY = 100
WORDS = ("river city museum bridge history travel ticket garden temple market night food tea "
         "mountain lake spring autumn festival school hospital station airport hotel park").split()


def setup_django(database_url: str) -> None:
    sys.path.insert(0, str(REPO))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def scratch_database(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        sys.exit("bench/export.py needs DATABASE_URL=postgres://... (the benchmark is on PostgreSQL)")
    name = f"{parsed.path.lstrip('/') or 'postgres'}_bench_{os.getpid()}"
    admin = urlunparse(parsed._replace(path="/postgres"))
    return urlunparse(parsed._replace(path=f"/{name}")), admin


def admin_sql(admin_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql)


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words))


def load_collection(slug: str, judgments: int) -> dict:
    """Queries, documents, candidates and qrels by COPY; then the simulated annotators."""
    from django.db import connection, transaction

    from annotate.models import Collection
    from annotate.simulation import SimulationParams, simulate_annotators
    from annotate.splits import split_for

    rng = random.Random(judgments)
    n_candidates = judgments // ANNOTATORS
    n_queries = n_candidates // CANDIDATES_PER_QUERY
    started = time.perf_counter()
    collection = Collection.objects.create(slug=slug, name=slug)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy("COPY annotate_query (collection_id, external_id, text, metadata, content_hash, split, holders, "
                      "shuffle_key, created_at, updated_at) FROM STDIN") as copy:
            for q in range(n_queries):
                qid = f"q{q:06d}"
                copy.write_row((collection.pk, qid, text(rng, 5), "{}", "-", split_for(qid), 0, rng.getrandbits(62),
                                "now", "now"))
        with raw.copy("COPY annotate_document (collection_id, external_id, title, text, metadata, content_hash, "
                      "created_at, updated_at) FROM STDIN") as copy:
            for q in range(n_queries):
                for k in range(CANDIDATES_PER_QUERY):
                    copy.write_row((collection.pk, f"d{q:06d}-{k:03d}", "", text(rng, 50), "{}", "-", "now", "now"))
        raw.execute("SELECT external_id, id FROM annotate_query WHERE collection_id = %s", [collection.pk])
        queries = dict(raw.fetchall())
        raw.execute("SELECT external_id, id FROM annotate_document WHERE collection_id = %s", [collection.pk])
        documents = dict(raw.fetchall())
        with raw.copy("COPY annotate_candidate (collection_id, query_id, document_id, sources, is_gold, coverage, "
                      "created_at) FROM STDIN") as copy:
            for q in range(n_queries):
                for k in range(CANDIDATES_PER_QUERY):
                    sources = json.dumps({"bm25": {"rank": k + 1, "score": round(30 - k * 0.1, 2)}, "qrels": {}})
                    copy.write_row((collection.pk, queries[f"q{q:06d}"], documents[f"d{q:06d}-{k:03d}"], sources,
                                    False, 0, "now"))
        raw.execute("SELECT id FROM annotate_candidate WHERE collection_id = %s ORDER BY id", [collection.pk])
        candidate_ids = [row[0] for row in raw.fetchall()]
        with raw.copy("COPY annotate_judgment (collection_id, candidate_id, source, grade, skipped, skip_reason, "
                      "flagged, withdrawn, note, guideline_version, created_at, updated_at) FROM STDIN") as copy:
            for candidate_id in candidate_ids:
                copy.write_row((collection.pk, candidate_id, "qrels:bench.tsv", rng.choice((0, 0, 1, 1, 2, 3)),
                                False, "", False, False, "", "", "now", "now"))
        raw.execute("ANALYZE annotate_query; ANALYZE annotate_document; ANALYZE annotate_candidate")
    copied = time.perf_counter() - started
    started = time.perf_counter()
    report = simulate_annotators(collection=collection,
                                 params=SimulationParams(annotators=ANNOTATORS, noise=0.2, seed=1, random_share=0.2))
    simulated = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotate_judgment; ANALYZE annotate_judgmentrevision")
    return {"queries": n_queries, "candidates": n_candidates, "people_judgments": report.judgments_added,
            "copy_seconds": round(copied, 2), "simulate_seconds": round(simulated, 2),
            "simulate_judgments_per_s": round(report.judgments_added / simulated)}


def export_in_subprocess(database_url: str, slug: str, data_dir: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", slug], capture_output=True, text=True, check=True,
                            env={**os.environ, "DATABASE_URL": database_url, "DATA_DIR": data_dir})
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss_kb() -> int:
    """This process's peak RSS in kB. Linux: VmHWM of the address space, which starts afresh at
    exec; getrusage's ru_maxrss would carry over the parent's peak from before the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def server_cpu_seconds() -> float | None:
    """CPU time of this connection's PostgreSQL backend process so far, when the server runs on
    this machine (/proc/<backend pid>/stat, fields utime + stime); None otherwise."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(slug: str) -> None:
    setup_django(os.environ["DATABASE_URL"])
    from annotate.export.services import create_snapshot
    from annotate.models import Collection

    collection = Collection.objects.get(slug=slug)
    before = peak_rss_kb()
    server_started = server_cpu_seconds()
    started, cpu_started = time.perf_counter(), time.process_time()
    snapshot = create_snapshot(collection=collection, format="listwise", params={})
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    server_ended = server_cpu_seconds()
    server = None if server_started is None or server_ended is None else server_ended - server_started
    peak_kb = peak_rss_kb()
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "server_cpu_seconds": server,
                      "candidates": snapshot.counts["candidates"],
                      "judgments_read": snapshot.counts["judgments_read"], "queries": snapshot.counts["queries"],
                      "size_bytes": snapshot.size_bytes, "peak_rss_mb": peak_kb / 1024,
                      "rss_before_export_mb": before / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--sizes", default="100000,1000000", help="people's judgments per collection, comma-separated")
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    url = os.environ.get("DATABASE_URL", "")
    scratch_url, admin_url = scratch_database(url)
    name = urlparse(scratch_url).path.lstrip("/")
    admin_sql(admin_url, f'CREATE DATABASE "{name}"')
    try:
        setup_django(scratch_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        figures = {"bench": "export", "database": "postgresql", "format": "listwise", "sizes": {}}
        with tempfile.TemporaryDirectory(prefix="bench-export-") as data_dir:
            for size in [int(s) for s in args.sizes.split(",")]:
                slug = f"bench-export-{size}"
                loaded = load_collection(slug, size)
                run = export_in_subprocess(scratch_url, slug, data_dir)
                entry = {**loaded, "export_seconds": round(run["seconds"], 2),
                         "candidates_per_s": round(run["candidates"] / run["seconds"]),
                         # This process's CPU time only: on a machine shared with other work the wall
                         # clock also counts waiting for a core and for the database server.
                         "candidates_per_cpu_s": round(run["candidates"] / run["cpu_seconds"]),
                         # ... and with the database backend's CPU time added (the work the export
                         # costs the machine, whatever else runs on it).
                         "server_cpu_seconds": None if run["server_cpu_seconds"] is None else round(run["server_cpu_seconds"], 2),
                         "candidates_per_total_cpu_s": None if run["server_cpu_seconds"] is None else round(
                             run["candidates"] / (run["cpu_seconds"] + run["server_cpu_seconds"])),
                         "load_average": round(os.getloadavg()[0], 2),
                         "judgments_read": run["judgments_read"], "file_mb": round(run["size_bytes"] / 2**20, 1),
                         "peak_rss_mb": round(run["peak_rss_mb"], 1),
                         "rss_before_export_mb": round(run["rss_before_export_mb"], 1)}
                figures["sizes"][str(size)] = entry
                print(f"{size} judgments: {loaded['candidates']} candidates exported in {entry['export_seconds']}s = "
                      f"{entry['candidates_per_s']} candidates/s, peak RSS {entry['peak_rss_mb']} MB "
                      f"(load: COPY {loaded['copy_seconds']}s, simulate_annotators {loaded['simulate_seconds']}s)",
                      flush=True)
        from django.db import connections

        connections.close_all()
    finally:
        admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sizes = sorted(figures["sizes"], key=int)
    small, large = figures["sizes"][sizes[0]], figures["sizes"][sizes[-1]]
    figures["candidates_per_s"] = large["candidates_per_s"]
    figures["vs_target_50k"] = round(large["candidates_per_s"] / 50_000, 2)
    figures["peak_rss_ratio_large_vs_small"] = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
    figures["acceptance"] = {"candidates_per_s_ge_50k": large["candidates_per_s"] >= 50_000,
                             "rss_ratio_le_1.2": figures["peak_rss_ratio_large_vs_small"] <= 1.2}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
