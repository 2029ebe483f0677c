"""docker-compose.yml: the production services, their commands, health checks and start order."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
APP_SERVICES = {"migrate", "web", "worker", "training-worker", "beat"}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def test_docker_compose_accepts_the_file():
    command = shutil.which("docker-compose")
    if command:
        argv = [command]
    elif shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        argv = ["docker", "compose"]
    else:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed (the file is parsed below)")
    env = {**os.environ, "SECRET_KEY": "compose-config-check", "POSTGRES_PASSWORD": "check"}
    result = subprocess.run([*argv, "-f", str(COMPOSE_FILE), "config", "-q"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_it_runs_postgres_redis_web_workers_and_beat(services):
    assert {"postgres", "redis"} | APP_SERVICES <= set(services)


def test_databases_report_health(services):
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])


def test_web_is_gunicorn_with_a_health_check_after_migrations(services):
    web = services["web"]
    assert web["command"][:2] == ["gunicorn", "config.wsgi"]
    assert "/accounts/login/" in " ".join(web["healthcheck"]["test"])
    assert "migrate --noinput" in " ".join(services["migrate"]["command"])
    assert "collectstatic --noinput" in " ".join(services["migrate"]["command"])


@pytest.mark.parametrize(("service", "queues"), [("worker", "default,mining"), ("training-worker", "training")])
def test_workers_consume_their_queues(services, service, queues):
    command = services[service]["command"]
    assert command[:4] == ["celery", "-A", "config", "worker"]
    assert command[command.index("-Q") + 1] == queues


def test_beat_runs_once(services):
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert "deploy" not in services["beat"] or services["beat"]["deploy"].get("replicas", 1) == 1


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_app_services_wait_for_healthy_databases(services, service):
    depends = services[service]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    if service != "migrate":
        assert depends["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_app_services_take_settings_from_the_environment(services, service):
    env = services[service]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # required: compose refuses to start without it
    assert env["DEBUG"] == "0"
    assert "ALLOWED_HOSTS" in env
    assert env["DATA_DIR"] == "/data" and "data:/data" in services[service]["volumes"]


def test_dockerfile_pins_the_cpu_torch_wheel_and_installs_the_requirements():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert "download.pytorch.org/whl/cpu" in dockerfile
    pinned = next(line.split()[0] for line in (REPO / "requirements.txt").read_text().splitlines()
                  if line.startswith("torch=="))
    assert pinned in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
