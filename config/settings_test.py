"""Settings for the test suite: the real settings, with a throwaway secret and fast hashing."""
import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
# Tests speak plain HTTP to the test client and live_server: no HTTPS redirect, HSTS or secure cookies
# (tests/test_production_settings.py checks the production values in a subprocess).
os.environ.setdefault("SECURE_COOKIES", "0")

from .settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# One process: the throttle counts in memory (tests of the Redis-backed counter point it at the test Redis).
CACHES = {**CACHES, "login_throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",  # noqa: F405
                                       "LOCATION": "login-throttle-test"}}

# Every test -- not only those asking for the `redis_url` fixture -- talks to the test database of
# Redis (TEST_REDIS_DB), never to the one a developer's `make run` uses: a test that queued a
# Celery task or a debounce key through the default URL used to leave it in database 0.
from urllib.parse import urlparse, urlunparse  # noqa: E402

TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "9"))
REDIS_URL = urlunparse(urlparse(REDIS_URL)._replace(path=f"/{TEST_REDIS_DB}"))  # noqa: F405
CELERY_BROKER_URL = CELERY_RESULT_BACKEND = REDIS_URL

# The SQLite test database is a file (workers started by tests must see it): two suites run side by
# side with different TEST_REDIS_DB numbers get different files too, instead of deleting each other's.
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and "TEST_REDIS_DB" in os.environ:  # noqa: F405
    from pathlib import Path  # noqa: E402

    _test_db = Path(DATABASES["default"]["TEST"]["NAME"])  # noqa: F405
    DATABASES["default"]["TEST"]["NAME"] = str(_test_db.with_name(f"{_test_db.stem}_{TEST_REDIS_DB}{_test_db.suffix}"))  # noqa: F405
