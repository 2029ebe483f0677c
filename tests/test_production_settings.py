"""Production settings: `check --deploy` is clean with a production environment, and start-up refuses
a missing or placeholder SECRET_KEY. Each case runs manage.py in a subprocess with its own env."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STRONG_KEY = "k3Jq9vX2mZp7LwT4rN8sYb1Hc6Fd0GaEuQiOyWxVtBnMlKjRh5_-PzSe"
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "studio.example.com",
    "SECURE_HSTS_PRELOAD": "1",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    # The test process's own switches (settings_test's env, the browser fixture's
    # DJANGO_ALLOW_ASYNC_UNSAFE) are not part of a production environment.
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SECURE_", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DJANGO_"))}
    return subprocess.run([sys.executable, *args], cwd=REPO, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return run(["manage.py", *args], env)


def settings_module(code: str = "", **env: str) -> subprocess.CompletedProcess:
    """Import config/settings.py alone (no app loading: fast) and run `code` with it as `s`."""
    return run(["-c", f"import config.settings as s\n{code}"], env)


def test_check_deploy_is_clean_with_the_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_defaults_turn_https_hardening_on():
    code = ("print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_INCLUDE_SUBDOMAINS)")
    result = settings_module(code, **{**PRODUCTION, "SECURE_HSTS_PRELOAD": "0"})
    assert result.stdout.split() == ["True", "31536000", "True", "True", "True"], result.stderr


def test_development_keeps_https_hardening_off():
    code = "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE)"
    result = settings_module(code, DEBUG="1")
    assert result.stdout.split() == ["False", "0", "False"], result.stderr


def test_plain_http_trial_turns_redirect_and_hsts_off_with_secure_cookies():
    code = "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE)"
    result = settings_module(code, **{**PRODUCTION, "SECURE_COOKIES": "0"})
    assert result.stdout.split() == ["False", "0", "False"], result.stderr


@pytest.mark.parametrize("key, message", [
    (None, "Configuration error: SECRET_KEY is required when DEBUG is off"),
    ("", "Configuration error: SECRET_KEY is required when DEBUG is off"),
    ("change-me-to-a-long-random-string", "Configuration error: SECRET_KEY is a placeholder or development key"),
    ("dev-only-insecure-key-do-not-use-in-production", "Configuration error: SECRET_KEY is a placeholder or development key"),
    ("django-insecure-abc", "Configuration error: SECRET_KEY is a placeholder or development key"),
])
def test_start_up_refuses_a_missing_or_placeholder_secret_key(key, message):
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    if key is not None:
        env["SECRET_KEY"] = key
    result = settings_module(**env)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name, value, message", [
    ("SECURE_SSL_REDIRECT", "maybe", "SECURE_SSL_REDIRECT='maybe' is not a boolean"),
    ("SECURE_HSTS_SECONDS", "-1", "SECURE_HSTS_SECONDS=-1 must be at least 0"),
    ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https", "SECURE_PROXY_SSL_HEADER='X-Forwarded-Proto: https' is not a header name"),
])
def test_a_malformed_https_setting_is_named(name, value, message):
    result = settings_module(**{**PRODUCTION, name: value})
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_proxy_header_is_read_as_the_request_meta_name():
    code = "print(s.SECURE_PROXY_SSL_HEADER)"
    result = settings_module(code, **{**PRODUCTION, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"})
    assert result.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", result.stderr


@pytest.mark.django_db
def test_csrf_is_enforced_on_the_login_form_and_on_session_api_writes(annotator):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    assert client.post("/accounts/login/", {"username": "ann1", "password": "ann1-pass-123"}).status_code == 403
    client.force_login(annotator)
    response = client.post("/api/collections/any/tasks/next/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
