"""Load on the judging API: gunicorn + PostgreSQL, simulated annotators over HTTP on 127.0.0.1.

Each simulated annotator logs in, then loops "get a task -> grade each candidate -> finish" for a
bounded time, either at a human pace (a grade every 1-3 s) or flat out. The same runs on a small
collection are the anchor: the figure that matters is p99 at 1M candidates against p99 at 10k.

After each run an audit compares the database with what the server acknowledged: judgments stored
= grades acknowledged, no candidate judged by more than k annotators, none twice by one annotator.

    .venv/bin/python bench/annotate_load.py                       # 1M and 10k, human pace and flat out
    .venv/bin/python bench/annotate_load.py --sizes 10000 --duration 20 --annotators 20   # quick look

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/rs_bench; the
database is dropped and recreated). Last line: one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/rs_bench"
CANDIDATES_PER_QUERY = 20
PASSWORD = "bench-pass-123"
WORDS = ("relevance search ranking query document passage answer river city weather pizza python list "
         "travel museum history recipe price review guide health sleep baby tooth doctor train ticket").split()


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def build_collection(slug: str, n_candidates: int, k: int, seed: int = 0) -> int:
    """Bulk-load a collection with COPY: n_candidates over queries of 20 candidates each."""
    from django.db import connection

    from annotate.models import Collection
    from annotate.splits import split_for

    rng = random.Random(seed)
    collection = Collection.objects.create(slug=slug, name=slug, overlap_k=k)
    n_queries = max(1, n_candidates // CANDIDATES_PER_QUERY)
    n_docs = max(CANDIDATES_PER_QUERY, n_candidates // 10)
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cur:
        with cur.copy("COPY annotate_document (collection_id, external_id, title, text, metadata, content_hash, "
                      "created_at, updated_at) FROM STDIN") as copy:
            for i in range(n_docs):
                copy.write_row((collection.pk, f"d{i}", "", sentence(rng, 30), "{}", str(i), "now", "now"))
        with cur.copy("COPY annotate_query (collection_id, external_id, text, metadata, content_hash, split, holders, "
                      "shuffle_key, created_at, updated_at) FROM STDIN") as copy:
            for i in range(n_queries):
                copy.write_row((collection.pk, f"q{i}", sentence(rng, 4), "{}", str(i), split_for(f"q{i}"), 0,
                                rng.getrandbits(62), "now", "now"))
        cur.execute("SELECT min(id) FROM annotate_document WHERE collection_id = %s", (collection.pk,))
        first_doc = cur.fetchone()[0]
        cur.execute("SELECT min(id) FROM annotate_query WHERE collection_id = %s", (collection.pk,))
        first_query = cur.fetchone()[0]
        with cur.copy("COPY annotate_candidate (collection_id, query_id, document_id, sources, is_gold, coverage, "
                      "created_at) FROM STDIN") as copy:
            for q in range(n_queries):
                for j, d in enumerate(rng.sample(range(n_docs), CANDIDATES_PER_QUERY)):
                    copy.write_row((collection.pk, first_query + q, first_doc + d, '{"bm25": {}}', False, 0, "now"))
        cur.execute("ANALYZE annotate_document; ANALYZE annotate_query; ANALYZE annotate_candidate")
    raw.commit()
    return collection.pk


def create_annotators(collection_ids: list[int], n: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from annotate.models import Collection, GuidelineAcknowledgement, Membership

    User = get_user_model()
    password = make_password(PASSWORD)
    users = User.objects.bulk_create(User(username=f"bench{i:03d}", password=password) for i in range(n))
    for collection in Collection.objects.filter(pk__in=collection_ids):
        Membership.objects.bulk_create(Membership(collection=collection, user=u) for u in users)
        GuidelineAcknowledgement.objects.bulk_create(
            [GuidelineAcknowledgement(user=u, version=collection.guideline_version) for u in users], ignore_conflicts=True
        )
    return [u.username for u in users]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "0",
           "SECRET_KEY": os.environ["SECRET_KEY"], "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_COOKIES": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
         "-k", "gthread", "--threads", str(threads), "--keep-alive", "30", "--log-level", "warning"],
        cwd=REPO, env=env, start_new_session=True,
    )
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


class Client:
    """One annotator's keep-alive HTTP session (cookies and CSRF by hand: no extra dependency)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def _headers(self, extra=None) -> dict:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), "Accept": "application/json"}
        if "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=self._headers(headers))
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, data

    def login(self, username: str) -> None:
        _, page = self.request("GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        body = f"username={username}&password={PASSWORD}&csrfmiddlewaretoken={token}".encode()
        status, _ = self.request("POST", "/accounts/login/", body,
                                 {"Content-Type": "application/x-www-form-urlencoded", "Referer": f"http://127.0.0.1:{self.port}/"})
        if status != 302:
            raise RuntimeError(f"login of {username} failed: HTTP {status}")

    def post_json(self, path: str, payload=None):
        body = json.dumps(payload or {}).encode()
        return self.request("POST", path, body, {"Content-Type": "application/json"})


def annotator_loop(client, username, slug, pace, stop_at, latencies, acknowledged, errors, rng, start_delay=0.0):
    try:
        # People do not all start in the same second: annotators arrive over the ramp-up.
        time.sleep(start_delay)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            status, data = client.post_json(f"/api/collections/{slug}/tasks/next/")
            latencies["next_task"].append(time.perf_counter() - started)
            if status == 204:
                return
            if status != 200:
                errors[f"next_task {status}"] += 1
                time.sleep(0.5)
                continue
            task = json.loads(data)
            for candidate in task["candidates"]:
                if time.monotonic() >= stop_at:
                    return
                if pace == "human":
                    time.sleep(rng.uniform(1.0, 3.0))
                key = f"{username}-{candidate['id']}-{rng.getrandbits(32)}"
                started = time.perf_counter()
                status, data = client.post_json(f"/api/tasks/{task['task']}/judgments/", {
                    "candidate": candidate["id"], "grade": rng.randint(0, 3), "idempotency_key": key,
                    "seconds_spent": 2.0})
                latencies["grade"].append(time.perf_counter() - started)
                if status == 200:
                    acknowledged.add((candidate["id"], username))
                else:
                    errors[f"grade {status}"] += 1
            started = time.perf_counter()
            status, _ = client.post_json(f"/api/tasks/{task['task']}/finish/")
            latencies["finish"].append(time.perf_counter() - started)
            if status != 200:
                errors[f"finish {status}"] += 1
    except Exception as exc:  # reported in the figures, never hidden
        errors[f"exception {type(exc).__name__}: {exc}"] += 1


def run_load(port: int, slug: str, usernames: list[str], pace: str, duration: float, seed: int,
             ramp_up: float = 10.0) -> dict:
    import numpy as np

    latencies: dict[str, list[float]] = defaultdict(list)
    acknowledged: set = set()
    errors: dict[str, int] = defaultdict(int)
    # Logging in (a deliberately slow password hash) happens before the measured window.
    clients = []
    for name in usernames:
        client = Client(port)
        client.login(name)
        clients.append(client)
    stop_at = time.monotonic() + duration
    threads = [
        threading.Thread(target=annotator_loop, args=(clients[i], name, slug, pace, stop_at, latencies, acknowledged,
                                                      errors, random.Random(seed + i),
                                                      ramp_up * i / max(1, len(usernames))), daemon=True)
        for i, name in enumerate(usernames)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 120)
    elapsed = time.monotonic() - started

    def pct(values):
        if not values:
            return None
        array = np.array(values) * 1000
        return {"n": len(values), "p50_ms": round(float(np.percentile(array, 50)), 2),
                "p95_ms": round(float(np.percentile(array, 95)), 2), "p99_ms": round(float(np.percentile(array, 99)), 2)}

    return {"latency": {name: pct(values) for name, values in latencies.items()},
            "grades_per_s": round(len(latencies["grade"]) / elapsed, 1), "acknowledged": acknowledged,
            "errors": dict(errors), "seconds": round(elapsed, 1)}


def audit(collection_id: int, acknowledged: set) -> dict:
    from django.contrib.auth import get_user_model

    from annotate.assignment import coverage_report
    from annotate.models import Collection, Judgment

    collection = Collection.objects.get(pk=collection_id)
    names = dict(get_user_model().objects.filter(username__startswith="bench").values_list("pk", "username"))
    stored = {
        (cid, names[uid])
        for cid, uid in Judgment.objects.filter(collection=collection, annotator__isnull=False, withdrawn=False)
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
    parser.add_argument("--paces", default="human,flat")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    sizes = [int(s) for s in args.sizes.split(",")]
    recreate_database(url)
    setup_django(url)
    collections = {}
    for size in sizes:
        t0 = time.monotonic()
        collections[size] = build_collection(f"load-{size}", size, args.k)
        print(f"built collection of {size:,} candidates in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    usernames = create_annotators(list(collections.values()), args.annotators)
    port = free_port()
    server = start_gunicorn(url, port, args.workers, args.threads)
    results = {}
    try:
        for pace in args.paces.split(","):
            for size in sizes:
                # Fresh annotators per run would need fresh logins only; the collections are separate.
                run = run_load(port, f"load-{size}", usernames, pace, args.duration, seed=size)
                run["audit"] = audit(collections[size], run.pop("acknowledged"))
                results[f"{pace}@{size}"] = run
                lat = run["latency"]
                print(f"{pace:>5} {size:>9,}: grade p50/p95/p99 "
                      f"{lat['grade']['p50_ms']}/{lat['grade']['p95_ms']}/{lat['grade']['p99_ms']} ms, next_task p99 "
                      f"{lat['next_task']['p99_ms']} ms, {run['grades_per_s']} grades/s, audit {run['audit']}, "
                      f"errors {run['errors']}", file=sys.stderr)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    target, anchor = sizes[0], sizes[-1]
    human = results.get(f"human@{target}"), results.get(f"human@{anchor}")
    summary = {"results": results}
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
    summary["audit_clean"] = all(
        r["audit"]["lost"] == 0 and r["audit"]["over_judged"] == 0 and r["audit"]["duplicates"] == 0 for r in results.values()
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
