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
import asyncio
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
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
    raw.commit()
    # What autovacuum would have done to tables this size before anyone judged: statistics for the
    # planner, hint bits and the visibility map (else the first reads of each page write it).
    raw.autocommit = True
    with raw.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) annotate_document, annotate_query, annotate_candidate")
    raw.autocommit = False
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


def sign_in(usernames: list[str], port: int) -> dict[str, dict[str, str]]:
    """Cookies of a signed-in session per annotator, made as Django's test client `force_login` makes
    them (the deliberately slow password hash is not what is measured), plus a CSRF cookie from the
    login page, which the API checks on every POST."""
    from django.contrib.auth import get_user_model
    from django.test import Client as DjangoClient

    cookies = {}
    users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames)}
    for name in usernames:
        django_client = DjangoClient()
        django_client.force_login(users[name])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/accounts/login/")
        response = conn.getresponse()
        response.read()
        conn.close()
        jar = {"sessionid": django_client.cookies["sessionid"].value}
        for header, value in response.getheaders():
            if header.lower() == "set-cookie" and value.startswith("csrftoken="):
                jar["csrftoken"] = value.split(";", 1)[0].partition("=")[2]
        cookies[name] = jar
    return cookies


class Client:
    """One annotator's keep-alive HTTP/1.1 connection, on asyncio: a hundred of these cost the load
    generator far less CPU than a hundred threads would (its CPU competes with the server's)."""

    def __init__(self, port: int, cookies: dict[str, str]):
        self.port = port
        self.reader = self.writer = None
        self.head = (
            f"Host: 127.0.0.1:{port}\r\nAccept: application/json\r\nContent-Type: application/json\r\n"
            f"Cookie: {'; '.join(f'{k}={v}' for k, v in cookies.items())}\r\nX-CSRFToken: {cookies['csrftoken']}\r\n"
        )

    async def _connect(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def post_json(self, path: str, payload=None, method: str = "POST") -> tuple[int, bytes]:
        body = json.dumps(payload or {}).encode() if method == "POST" else b""
        message = f"{method} {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        for attempt in range(2):
            fresh = self.writer is None
            if fresh:
                await self._connect()
            try:
                self.writer.write(message)
                return await self._read_response()
            except (asyncio.IncompleteReadError, ConnectionError):
                # A kept-alive connection the server closed before we wrote: send again, once, on a
                # new one. Safe: grades carry an idempotency key, and next/finish repeat harmlessly.
                self.close()
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")

    async def _read_response(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
        else:
            data = b"" if status in (204, 304) else await self.reader.read()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, data


async def annotator_loop(client, username, slug, pace, stop_at, latencies, acknowledged, errors, rng, start_delay):
    try:
        # People do not all start in the same second: annotators arrive over the ramp-up.
        await asyncio.sleep(start_delay)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            status, data = await client.post_json(f"/api/collections/{slug}/tasks/next/")
            latencies["next_task"].append(time.perf_counter() - started)
            if status == 204:
                return
            if status != 200:
                errors[f"next_task {status}"] += 1
                await asyncio.sleep(0.5)
                continue
            task = json.loads(data)
            for candidate in task["candidates"]:
                if time.monotonic() >= stop_at:
                    return
                if pace == "human":
                    await asyncio.sleep(rng.uniform(1.0, 3.0))
                key = f"{username}-{candidate['id']}-{rng.getrandbits(32)}"
                started = time.perf_counter()
                status, data = await client.post_json(f"/api/tasks/{task['task']}/judgments/", {
                    "candidate": candidate["id"], "grade": rng.randint(0, 3), "idempotency_key": key,
                    "seconds_spent": 2.0})
                latencies["grade"].append(time.perf_counter() - started)
                if status == 200:
                    acknowledged.add((candidate["id"], username))
                else:
                    errors[f"grade {status}"] += 1
            started = time.perf_counter()
            status, _ = await client.post_json(f"/api/tasks/{task['task']}/finish/")
            latencies["finish"].append(time.perf_counter() - started)
            if status != 200:
                errors[f"finish {status}"] += 1
    except Exception as exc:  # reported in the figures, never hidden
        errors[f"exception {type(exc).__name__}: {exc}"] += 1
    finally:
        client.close()


class CpuMeter:
    """CPU seconds over a window: the load generator (this process), gunicorn (master and workers),
    the PostgreSQL backends serving the bench database, and the whole machine (every process, the
    other tenants included), with the load average at both ends."""

    def __init__(self, server: subprocess.Popen, database: str):
        import psutil

        self.psutil = psutil
        self.server = psutil.Process(server.pid)
        self.database = database

    def _processes(self):
        server = [self.server, *self.server.children(recursive=True)]
        backends = []
        for process in self.psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if cmdline.startswith("postgres: ") and f" {self.database} " in cmdline:
                backends.append(process)
        return server, backends

    def _read(self) -> dict:
        server, backends = self._processes()

        def cpu(processes):
            total = {}
            for process in processes:
                try:
                    times = process.cpu_times()
                    total[process.pid] = times.user + times.system
                except self.psutil.Error:
                    pass
            return total

        machine = self.psutil.cpu_times()
        return {"load": time.process_time(), "server": cpu(server), "postgres": cpu(backends),
                "machine_busy": sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
                "loadavg": os.getloadavg()[0]}

    def start(self):
        self.before = self._read()

    def stop(self, seconds: float) -> dict:
        after = self._read()

        def delta(kind):  # processes started during the window count from zero
            return sum(value - self.before[kind].get(pid, 0.0) for pid, value in after[kind].items())

        server, postgres = delta("server"), delta("postgres")
        load = after["load"] - self.before["load"]
        busy = after["machine_busy"] - self.before["machine_busy"]
        return {"server_s": round(server, 2), "postgres_s": round(postgres, 2), "load_generator_s": round(load, 2),
                "machine_busy_s": round(busy, 2), "machine_cores": self.psutil.cpu_count(),
                "load_generator_share_of_machine": round(load / busy, 3) if busy else None,
                "others_s": round(busy - server - postgres - load, 2), "window_s": round(seconds, 1),
                "loadavg_1m_start": round(self.before["loadavg"], 2), "loadavg_1m_end": round(after["loadavg"], 2)}


def warm_up(port: int, cookies: dict, slug: str, rounds: int = 3) -> None:
    """Before anything is measured: every annotator opens the collection's guideline page (signed in,
    reads the database, changes nothing) a few times at once, so each gunicorn thread has opened its
    database connection and each worker has imported its URLconf; otherwise the first run alone
    would pay for them in its tail."""
    async def everyone():
        clients = [Client(port, jar) for jar in cookies.values()]
        for _ in range(rounds):
            await asyncio.gather(*(client.post_json(f"/c/{slug}/guidelines/", method="GET") for client in clients))
        for client in clients:
            client.close()

    asyncio.run(everyone())


def run_load(port: int, slug: str, cookies: dict, pace: str, duration: float, seed: int, meter: CpuMeter,
             ramp_up: float) -> dict:
    import numpy as np

    latencies: dict[str, list[float]] = defaultdict(list)
    acknowledged: set = set()
    errors: dict[str, int] = defaultdict(int)
    usernames = sorted(cookies)

    async def everyone():
        stop_at = time.monotonic() + duration
        await asyncio.gather(*(
            annotator_loop(Client(port, cookies[name]), name, slug, pace, stop_at, latencies, acknowledged, errors,
                           random.Random(seed + i), ramp_up * i / max(1, len(usernames)))
            for i, name in enumerate(usernames)
        ))

    meter.start()
    started = time.monotonic()
    asyncio.run(everyone())
    elapsed = time.monotonic() - started
    cpu = meter.stop(elapsed)

    def pct(values):
        if not values:
            return None
        array = np.array(values) * 1000
        return {"n": len(values), "p50_ms": round(float(np.percentile(array, 50)), 2),
                "p95_ms": round(float(np.percentile(array, 95)), 2), "p99_ms": round(float(np.percentile(array, 99)), 2)}

    requests = sum(len(values) for values in latencies.values())
    grades = len(latencies["grade"])
    cpu["server_plus_postgres_ms_per_request"] = round(1000 * (cpu["server_s"] + cpu["postgres_s"]) / max(1, requests), 2)
    cpu["server_ms_per_request"] = round(1000 * cpu["server_s"] / max(1, requests), 2)
    cpu["postgres_ms_per_request"] = round(1000 * cpu["postgres_s"] / max(1, requests), 2)
    return {"latency": {name: pct(values) for name, values in latencies.items()},
            "grades_per_s": round(grades / elapsed, 1), "requests": requests, "acknowledged": acknowledged,
            "errors": dict(errors), "seconds": round(elapsed, 1), "cpu": cpu}


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


def collections_in_place(sizes: list[int], n_annotators: int) -> dict[int, int] | None:
    """With --reuse-db: the collections and annotators of an earlier run, if they are all there."""
    from django.contrib.auth import get_user_model

    from annotate.models import Candidate, Collection

    found = {}
    for size in sizes:
        collection = Collection.objects.filter(slug=f"load-{size}").first()
        if collection is None or Candidate.objects.filter(collection=collection).count() != size:
            return None
        found[size] = collection.pk
    if get_user_model().objects.filter(username__startswith="bench").count() < n_annotators:
        return None
    return found


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
