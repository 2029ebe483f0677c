"""Private servers for the fault tests -- never the machine's PostgreSQL (5432) or Redis (6379), which
others use: a redis-server and a PostgreSQL cluster on free ports in temporary directories, gunicorn
serving the app against them, and an HTTP client that retries the way a browser's page script does."""
from __future__ import annotations

import glob
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config.redis_local import free_port, redis_answers, start_local_redis

REPO = Path(__file__).resolve().parents[2]


# ---- Redis -------------------------------------------------------------------------------------

class PrivateRedis:
    """A redis-server of our own on a fixed free port, so it can be stopped and started again."""

    def __init__(self, workdir: Path):
        self.workdir, self.port, self.process = workdir, free_port(), None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        _, self.process = start_local_redis(self.workdir, port=self.port)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        assert not redis_answers(self.url), f"redis on port {self.port} still answers after stop"


# ---- PostgreSQL --------------------------------------------------------------------------------

def postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return candidates[-1] if candidates else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster: initdb into a temp dir, pg_ctl start/restart/stop on a free port.

    PostgreSQL refuses to run as root; as root (CI, this machine) the cluster belongs to the
    `postgres` OS user and every pg command runs through `runuser -u postgres`.
    """

    def __init__(self):
        self.initdb, self.pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
        self.port = free_port()
        self.root: Path | None = None
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                self.user = None

    def missing(self) -> str | None:
        """Why this machine cannot run a private cluster, or None."""
        if not self.initdb or not self.pg_ctl:
            return "initdb/pg_ctl not installed (apt-get install postgresql)"
        if os.geteuid() == 0 and self.user is None:
            return "running as root and there is no `postgres` OS user to own a private cluster"
        if os.geteuid() == 0 and not shutil.which("runuser"):
            return "running as root without `runuser` to start PostgreSQL as the postgres user"
        return None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/faults"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [*args]
        if self.user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
                               f"\n{self.log_tail()}")
        return result

    def log_tail(self) -> str:
        log = self.root / "server.log" if self.root else None
        return log.read_text(errors="replace")[-3000:] if log and log.exists() else ""

    def start(self) -> "PrivatePostgres":
        self.root = Path(tempfile.mkdtemp(prefix="rs-faults-pg-"))
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self._run(self.initdb, "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        self._pg_ctl("start")
        self._run(postgres_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "faults")
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=60"
        self._run(self.pg_ctl, action, "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", *extra)

    def restart(self) -> None:
        """Fast shutdown (every session is cut off at once) and start again."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if (self.root / "data" / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# ---- gunicorn ----------------------------------------------------------------------------------

class Gunicorn:
    """The app under gunicorn (gthread), in its own process group; killed with it."""

    def __init__(self, *, env: dict, log: Path, workers: int = 2, threads: int = 4):
        self.port = free_port()
        self.env = {**os.environ, "DEBUG": "0", "SECURE_COOKIES": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
                    "PYTHONUNBUFFERED": "1", **env}
        self.log, self.workers, self.threads, self.process = log, workers, threads, None

    def start(self, timeout: float = 60) -> "Gunicorn":
        self._log_file = open(self.log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers),
             "-k", "gthread", "--threads", str(self.threads), "--timeout", "60", "--log-level", "warning"],
            cwd=REPO, env=self.env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.output()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/accounts/login/")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(15)
        if getattr(self, "_log_file", None):
            self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


# ---- an annotator's HTTP client ----------------------------------------------------------------

class Unavailable(Exception):
    """The server kept failing (no answer, or 5xx) past the client's patience."""


class AnnotatorClient:
    """One annotator's keep-alive session. A request that gets no answer or a 5xx is sent again,
    unchanged (a grade keeps its idempotency key), with backoff, for up to `patience` seconds -- what
    the workbench page does -- and every attempt's outcome is counted in `self.seen`."""

    def __init__(self, port: int, *, patience: float = 30.0):
        self.port, self.patience = port, patience
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.seen: dict[str, int] = {}

    def _note(self, what: str) -> None:
        self.seen[what] = self.seen.get(what, 0) + 1

    def _once(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, bytes]:
        all_headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), "Accept": "application/json",
                       **({"X-CSRFToken": self.cookies["csrftoken"]} if "csrftoken" in self.cookies else {}), **headers}
        try:
            self.conn.request(method, path, body=body, headers=all_headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, data

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
                ) -> tuple[int, bytes, int]:
        """(status, body, attempts) of the first answer that is not a 5xx."""
        deadline, delay, attempts = time.monotonic() + self.patience, 0.1, 0
        while True:
            attempts += 1
            try:
                status, data = self._once(method, path, body, headers or {})
                if status < 500:
                    return status, data, attempts
                self._note(f"HTTP {status}")
            except (http.client.HTTPException, OSError) as error:
                self._note(type(error).__name__)
            if time.monotonic() + delay > deadline:
                raise Unavailable(f"{method} {path}: no good answer in {self.patience} s ({self.seen})")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def login(self, username: str, password: str) -> None:
        _, page, _ = self.request("GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        body = f"username={username}&password={password}&csrfmiddlewaretoken={token}".encode()
        status, _, _ = self.request("POST", "/accounts/login/", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Referer": f"http://127.0.0.1:{self.port}/"})
        if status != 302:
            raise RuntimeError(f"login of {username} failed: HTTP {status}")

    def post_json(self, path: str, payload: dict | None = None) -> tuple[int, dict | None, int]:
        status, data, attempts = self.request("POST", path, json.dumps(payload or {}).encode(),
                                              {"Content-Type": "application/json"})
        return status, (json.loads(data) if data else None), attempts
