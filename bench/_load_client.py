"""The judging load bench's load (bench/annotate_load.py): signed-in sessions, one asyncio HTTP
client per simulated annotator, the annotator loop, and the CPU meter around a run."""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import subprocess
import time
from collections import defaultdict

from annotate.grades import GRADE_MAX, GRADE_MIN


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
                    "candidate": candidate["id"], "grade": rng.randint(GRADE_MIN, GRADE_MAX), "idempotency_key": key,
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
