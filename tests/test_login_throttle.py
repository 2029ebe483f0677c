"""Login throttling over real HTTP (live_server): the login page and HTTP Basic on the API."""
from __future__ import annotations

import base64
import contextlib
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.core.cache import caches


@pytest.fixture(autouse=True)
def _fresh_counter():
    """The in-memory counter outlives a test: start and leave each test with none."""
    caches["login_throttle"].clear()
    yield
    with contextlib.suppress(Exception):  # the test may have pointed the alias at a dead Redis
        caches["login_throttle"].clear()


@pytest.fixture
def limit(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_LOCKOUT_SECONDS = 600
    return 3


class Browserless:
    """A cookie-keeping HTTP client that logs in through the real login form (CSRF included)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def login(self, username: str, password: str) -> tuple[int, str, str]:
        """(status, final URL, body) after posting the form."""
        page = self.opener.open(self.base_url + "/accounts/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"username": username, "password": password,
                                       "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(self.base_url + "/accounts/login/", data=data,
                                         headers={"Referer": self.base_url + "/accounts/login/"})
        try:
            response = self.opener.open(request)
            return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.geturl(), error.read().decode()


def api_get(base_url: str, username: str, password: str) -> tuple[int, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(base_url + "/api/collections/", headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_login_page_locks_a_username_after_the_limit_with_a_clear_message(live_server, annotator, limit):
    client = Browserless(live_server.url)
    for _ in range(limit):
        status, _, body = client.login("ann1", "wrong-password")
        assert status == 200 and "did not match" in body
    # Locked: even the right password is refused, with the reason and the wait.
    status, _, body = client.login("ann1", "ann1-pass-123")
    assert status == 429
    assert "Too many failed logins for this username; try again in 10 minutes." in body
    # Other usernames are not affected.
    status, _, _ = Browserless(live_server.url).login("staff", "wrong")
    assert status == 200


def test_a_successful_login_resets_the_count(live_server, annotator, limit):
    client = Browserless(live_server.url)
    for _ in range(limit - 1):
        client.login("ann1", "wrong-password")
    status, url, _ = client.login("ann1", "ann1-pass-123")
    assert status == 200 and "/accounts/login/" not in url
    for _ in range(limit - 1):
        status, url, _ = Browserless(live_server.url).login("ann1", "wrong-password")
    assert status == 200 and url.endswith("/accounts/login/")  # counting started again from zero


def test_api_basic_auth_counts_failures_and_answers_a_lockout_in_json(live_server, annotator, limit):
    for _ in range(limit):
        status, body = api_get(live_server.url, "ann1", "wrong")
        assert status in (401, 403) and "Invalid username/password" in body
    status, body = api_get(live_server.url, "ann1", "ann1-pass-123")
    assert status in (401, 403)
    assert "Too many failed logins for this username" in body
    # The same username is locked on the login page too.
    status, _, body = Browserless(live_server.url).login("ANN1", "ann1-pass-123")
    assert status == 429


def test_lockout_expires(live_server, annotator, settings):
    settings.LOGIN_FAILURE_LIMIT = 1
    settings.LOGIN_LOCKOUT_SECONDS = 3
    client = Browserless(live_server.url)
    client.login("ann1", "wrong")
    assert client.login("ann1", "ann1-pass-123")[0] == 429
    import time

    time.sleep(3.2)
    status, url, _ = client.login("ann1", "ann1-pass-123")
    assert status == 200 and "/accounts/login/" not in url


@pytest.mark.django_db
def test_the_counter_is_shared_through_redis_in_production(settings, redis_url, client, annotator):
    """Production keeps the counter in Redis, so every gunicorn worker sees the same count."""
    settings.CACHES = {**settings.CACHES, "login_throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": "login-throttle"}}
    settings.LOGIN_FAILURE_LIMIT = 2
    caches["login_throttle"].clear()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "ann1", "password": "wrong"})
    # A second process would read the same key: check it with a fresh Redis connection.
    import redis

    keys = redis.Redis.from_url(redis_url).keys("login-throttle:*")
    assert len(keys) == 1
    response = client.post("/accounts/login/", {"username": "ann1", "password": "ann1-pass-123"})
    assert response.status_code == 429
    caches["login_throttle"].clear()


@pytest.mark.django_db
def test_an_unreachable_throttle_cache_does_not_block_logins(settings, client, annotator):
    settings.CACHES = {**settings.CACHES, "login_throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    response = client.post("/accounts/login/", {"username": "ann1", "password": "ann1-pass-123"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_unlock_login_lifts_a_lockout(client, annotator, limit):
    from io import StringIO

    from django.core.management import call_command

    for _ in range(limit):
        client.post("/accounts/login/", {"username": "ann1", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "ann1", "password": "ann1-pass-123"}).status_code == 429
    call_command("unlock_login", "ann1", stdout=StringIO())
    assert client.post("/accounts/login/", {"username": "ann1", "password": "ann1-pass-123"}).status_code == 302


@pytest.mark.django_db
def test_unlock_login_from_another_process_lifts_a_lockout_under_development_settings(settings, redis_url, client,
                                                                                       annotator, limit):
    """`make run` runs with DEBUG=1; `unlock_login` is another process. The count must live where
    both see it: before, DEBUG put it in the web process's memory and the command "cleared" nothing."""
    import json
    import os
    import subprocess
    import sys

    from django.conf import settings as django_settings

    env = {**os.environ, "DEBUG": "1", "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("SECRET_KEY", None)
    development = subprocess.run(
        [sys.executable, "-c", "import django, json; django.setup(); from django.conf import settings; "
                               "print(json.dumps(settings.CACHES['login_throttle']))"],
        env=env, cwd=django_settings.BASE_DIR, capture_output=True, text=True, check=True)
    settings.CACHES = {**settings.CACHES, "login_throttle": json.loads(development.stdout)}  # what the web process uses
    caches["login_throttle"].clear()
    for _ in range(limit):
        client.post("/accounts/login/", {"username": "ann1", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "ann1", "password": "ann1-pass-123"}).status_code == 429
    unlocked = subprocess.run([sys.executable, "manage.py", "unlock_login", "ann1"], env=env,
                              cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=60)
    assert unlocked.returncode == 0, unlocked.stderr
    assert "cleared" in unlocked.stdout
    assert client.post("/accounts/login/", {"username": "ann1", "password": "ann1-pass-123"}).status_code == 302
