"""PostgreSQL restarts (fast shutdown: every session cut off) while annotators grade flat out over
HTTP: clients get errors for a moment and retry, unchanged (a grade keeps its idempotency key);
the app reconnects by itself; and the audit finds every acknowledged grade stored, none twice, no
candidate judged by more than k annotators. Runs on a private cluster, never the machine's."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from .servers import REPO, AnnotatorClient, Gunicorn, PrivatePostgres, Unavailable

pytestmark = [pytest.mark.faults, pytest.mark.slow]
PASSWORD = "pw-123456789"
QUERIES, CANDIDATES, K, ANNOTATORS = 60, 5, 2, 4
RESTART_AFTER = 2.5  # seconds into the load
LOAD_SECONDS = 8.0


@pytest.fixture
def cluster():
    postgres = PrivatePostgres()
    reason = postgres.missing()
    if reason:
        pytest.skip(reason)
    try:
        yield postgres.start()
    finally:
        postgres.stop()


def annotate_flat_out(client: AnnotatorClient, name: str, slug: str, stop_at: float, acknowledged: list,
                      problems: list) -> None:
    try:
        client.login(name, PASSWORD)
        while time.monotonic() < stop_at:
            status, task, _ = client.post_json(f"/api/collections/{slug}/tasks/next/")
            if status == 204:
                return  # nothing left for this annotator
            if status != 200:
                problems.append(f"{name}: next task HTTP {status} {task}")
                return
            for candidate in task["candidates"]:
                key = f"{name}-{candidate['id']}"
                status, body, attempts = client.post_json(f"/api/tasks/{task['task']}/judgments/", {
                    "candidate": candidate["id"], "grade": candidate["id"] % 4, "idempotency_key": key})
                if status == 200:
                    acknowledged.append((candidate["id"], name, attempts))
                else:
                    problems.append(f"{name}: grade HTTP {status} {body}")
            status, body, attempts = client.post_json(f"/api/tasks/{task['task']}/finish/")
            # A finish whose first answer was lost was applied already: its retry may be refused.
            if status != 200 and attempts == 1:
                problems.append(f"{name}: finish HTTP {status} {body}")
    except (Unavailable, RuntimeError) as error:
        problems.append(f"{name}: {error}")


def audit(url: str, acknowledged: list) -> dict:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        rows = conn.execute(
            "SELECT j.candidate_id, u.username FROM annotate_judgment j JOIN auth_user u ON u.id = j.annotator_id "
            "WHERE j.withdrawn = false").fetchall()
        over_k = conn.execute(
            "SELECT count(*) FROM (SELECT candidate_id FROM annotate_judgment WHERE annotator_id IS NOT NULL "
            "AND withdrawn = false GROUP BY candidate_id HAVING count(DISTINCT annotator_id) > %s) c", [K]).fetchone()[0]
    stored = set(rows)
    acked = {(candidate, name) for candidate, name, _ in acknowledged}
    return {"acknowledged": len(acked), "stored": len(stored), "lost": sorted(acked - stored),
            "stored_twice": len(rows) - len(stored), "over_k": over_k}


def test_acknowledged_grades_survive_a_postgresql_restart_under_load(cluster, redis_url, tmp_path):
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.faults.seed_database", str(QUERIES), str(CANDIDATES), str(K), str(ANNOTATORS)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
        env={**os.environ, "DATABASE_URL": cluster.url, "DJANGO_SETTINGS_MODULE": "tests.faults.server_settings"},
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    setup = json.loads(seeded.stdout.strip().splitlines()[-1])
    server = Gunicorn(env={"DATABASE_URL": cluster.url, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path / "data"),
                           "DJANGO_SETTINGS_MODULE": "tests.faults.server_settings"},
                      log=tmp_path / "gunicorn.log", workers=2, threads=4)
    acknowledged: list = []
    problems: list = []
    clients: dict[str, AnnotatorClient] = {}
    try:
        server.start()
        clients = {name: AnnotatorClient(server.port, patience=45) for name in setup["annotators"]}
        stop_at = time.monotonic() + LOAD_SECONDS
        threads = [threading.Thread(target=annotate_flat_out, daemon=True,
                                    args=(client, name, setup["slug"], stop_at, acknowledged, problems))
                   for name, client in clients.items()]
        for thread in threads:
            thread.start()
        time.sleep(RESTART_AFTER)
        before_restart = len(acknowledged)
        restart_started = time.monotonic()
        cluster.restart()
        restart_seconds = time.monotonic() - restart_started
        for thread in threads:
            thread.join(LOAD_SECONDS + 90)
        assert not any(thread.is_alive() for thread in threads), "an annotator is still waiting"
    finally:
        server.stop()
    failures = {what: n for client in clients.values() for what, n in client.seen.items()}
    result = audit(cluster.url, acknowledged)
    print(json.dumps({"restart_s": round(restart_seconds, 2), "acknowledged_before_restart": before_restart,
                      "retried_failures": failures, "retried_grades": sum(a > 1 for *_, a in acknowledged), **result}))
    assert not problems, problems
    assert before_restart > 0 and len(acknowledged) > before_restart, "grades on both sides of the restart"
    assert failures, "the restart never reached a client: the test did not test it"
    assert result["lost"] == [] and result["stored"] >= result["acknowledged"]
    assert result["stored_twice"] == 0 and result["over_k"] == 0
