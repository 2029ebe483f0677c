"""Load on the judging API: gunicorn + PostgreSQL, simulated annotators over HTTP on 127.0.0.1.

Each simulated annotator has a signed-in session, then loops "get a task -> grade each candidate ->
finish" for a bounded time, either at a human pace (a grade every 1-3 s) or flat out. The same runs
on a small collection are the anchor: the figure that matters is p99 at 1M candidates against p99
at 10k. Latency is measured by the client, from sending a request to having read its response.

After each run an audit compares the database with what the server acknowledged: judgments stored
= grades acknowledged, no candidate judged by more than k annotators, none twice by one annotator.
Each run also reports CPU seconds: gunicorn, the PostgreSQL backends of the bench database, the load
generator itself (one asyncio thread) and the whole machine, with the 1-minute load average, so a
run on a busy machine can be told from one on a quiet machine.

    .venv/bin/python bench/annotate_load.py        # 1M and 10k, human pace then flat out, 60 s each (~7 min)
    .venv/bin/python bench/annotate_load.py --sizes 10000 --duration 20 --annotators 20   # quick look
    .venv/bin/python bench/annotate_load.py --reuse-db --paces flat --workers 4 --threads 2  # keep the data

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/rs_bench; the
database is dropped and recreated unless --reuse-db finds it complete) and Redis (BENCH_REDIS_URL,
default database TEST_REDIS_DB or 15 on 127.0.0.1:6379). Last line: one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._load_client import CpuMeter, run_load, sign_in, warm_up  # noqa: E402
from bench._load_setup import (  # noqa: E402
    DEFAULT_DB,
    build_collection,
    collections_in_place,
    create_annotators,
    recreate_database,
    setup_django,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int, threads: int, worker_class: str, redis_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "0",
           "SECRET_KEY": os.environ["SECRET_KEY"], "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_COOKIES": "0",
           "REDIS_URL": redis_url,
           # Connections kept for the whole bench, as a deployment would keep them; also, a backend
           # that exits mid-run would take its CPU time out of the meter's sum.
           "DATABASE_CONN_MAX_AGE": "3600"}
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
               "-k", worker_class, "--keep-alive", "30", "--log-level", "warning", "--backlog", "2048"]
    if worker_class == "gthread":
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/accounts/login/")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("gunicorn did not come up")


def audit(collection_id: int, acknowledged: set) -> dict:
    from django.contrib.auth import get_user_model

    from annotate.judging.assignment import coverage_report
    from annotate.models import Collection, Judgment

    collection = Collection.objects.get(pk=collection_id)
    names = dict(get_user_model().objects.filter(username__startswith="bench").values_list("pk", "username"))
    stored = {
        (cid, names[uid])
        for cid, uid in Judgment.objects.filter(collection=collection).by_people().standing()
        .values_list("candidate_id", "annotator_id")
    }
    report = coverage_report(collection)
    return {"acknowledged": len(acknowledged), "stored": len(stored), "lost": len(acknowledged - stored),
            "over_judged": report["over_judged"], "duplicates": report["duplicates"],
            "coverage_violations": report["coverage_violations"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000", help="candidate counts, the first is the target")
    parser.add_argument("--annotators", type=int, default=100)
    parser.add_argument("--duration", type=float, default=60, help="seconds per run")
    parser.add_argument("--ramp-up", type=float, default=10, help="seconds over which annotators start")
    parser.add_argument("--paces", default="human,flat")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--reuse-db", action="store_true",
                        help="keep the bench database and its collections when they are already there")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    # The grade path counts new judgments in Redis for the agreement report (and may queue a task no
    # worker here runs): keep that out of the Redis database other programs use.
    redis_url = os.environ.get("BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{os.environ.get('TEST_REDIS_DB', '15')}")
    os.environ["REDIS_URL"] = redis_url
    sizes = [int(s) for s in args.sizes.split(",")]
    collections = None
    if args.reuse_db:
        try:
            setup_django(url)
            collections = collections_in_place(sizes, args.annotators)
        except Exception as exc:  # no database yet: build it
            print(f"reuse-db: starting afresh ({type(exc).__name__})", file=sys.stderr)
    if collections is None:
        if args.reuse_db:
            from django.db import connections

            connections.close_all()
        recreate_database(url)
        setup_django(url)
        collections = {}
        for size in sizes:
            t0 = time.monotonic()
            collections[size] = build_collection(f"load-{size}", size, args.k)
            print(f"built collection of {size:,} candidates in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        create_annotators(list(collections.values()), args.annotators)
    usernames = [f"bench{i:03d}" for i in range(args.annotators)]
    port = free_port()
    server = start_gunicorn(url, port, args.workers, args.threads, args.worker_class, redis_url)
    results = {}
    try:
        cookies = sign_in(usernames, port)
        warm_up(port, cookies, f"load-{sizes[0]}")
        meter = CpuMeter(server, urlparse(url).path.lstrip("/"))
        for pace in args.paces.split(","):
            for size in sizes:
                run = run_load(port, f"load-{size}", cookies, pace, args.duration, seed=size + len(results) * 7919,
                               meter=meter, ramp_up=args.ramp_up)
                run["audit"] = audit(collections[size], run.pop("acknowledged"))
                results[f"{pace}@{size}"] = run
                lat, cpu = run["latency"], run["cpu"]
                print(f"{pace:>5} {size:>9,}: grade p50/p95/p99 "
                      f"{lat['grade']['p50_ms']}/{lat['grade']['p95_ms']}/{lat['grade']['p99_ms']} ms, next_task p99 "
                      f"{lat['next_task']['p99_ms']} ms, {run['grades_per_s']} grades/s, CPU ms/request "
                      f"server {cpu['server_ms_per_request']} + postgres {cpu['postgres_ms_per_request']}, "
                      f"load generator {cpu['load_generator_share_of_machine']:.0%} of the machine's busy CPU, "
                      f"load {cpu['loadavg_1m_start']}->{cpu['loadavg_1m_end']}, audit {run['audit']}, "
                      f"errors {run['errors']}", file=sys.stderr)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    target, anchor = sizes[0], sizes[-1]
    human = results.get(f"human@{target}"), results.get(f"human@{anchor}")
    summary = {"server": {"workers": args.workers, "worker_class": args.worker_class,
                          "threads": args.threads if args.worker_class == "gthread" else 1},
               "annotators": args.annotators, "duration_s": args.duration, "results": results}
    if all(human):
        summary.update({
            "grade_p99_ms": human[0]["latency"]["grade"]["p99_ms"],
            "next_task_p99_ms": human[0]["latency"]["next_task"]["p99_ms"],
            "grade_p99_ratio_vs_anchor": round(human[0]["latency"]["grade"]["p99_ms"] / human[1]["latency"]["grade"]["p99_ms"], 2),
            "next_task_p99_ratio_vs_anchor": round(
                human[0]["latency"]["next_task"]["p99_ms"] / human[1]["latency"]["next_task"]["p99_ms"], 2),
        })
    flat = results.get(f"flat@{target}")
    if flat:
        summary["flat_out_grades_per_s"] = flat["grades_per_s"]
        summary["flat_out_cpu_ms_per_request"] = flat["cpu"]["server_plus_postgres_ms_per_request"]
    summary["audit_clean"] = all(
        r["audit"]["lost"] == 0 and r["audit"]["over_judged"] == 0 and r["audit"]["duplicates"] == 0 for r in results.values()
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
