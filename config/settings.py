"""Relevance Studio settings: everything that varies between machines comes from the environment.

A missing or malformed value stops start-up with one line naming the variable (see config/env.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

from .env import (
    DEV_SECRET_KEY,
    SettingError,
    default_base_model_dir,
    env_bool,
    env_database,
    env_dir,
    env_int,
    env_list,
    env_proxy_ssl_header,
    env_redis_url,
    env_secret_key,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent


def _load() -> dict:
    debug = env_bool("DEBUG", False)
    secret_key = env_secret_key("SECRET_KEY", debug=debug, dev_default=DEV_SECRET_KEY)
    data_dir = env_dir("DATA_DIR", BASE_DIR / "var")
    base_model = env_str("BASE_MODEL_DIR")
    if base_model:
        base_model_dir = Path(base_model).expanduser().resolve()
        if not base_model_dir.is_dir():
            raise SettingError(f"BASE_MODEL_DIR={base_model!r} is not a directory")
    else:
        base_model_dir = default_base_model_dir()
    return {
        "DEBUG": debug,
        "SECRET_KEY": secret_key,
        "DATA_DIR": data_dir,
        "BASE_MODEL_DIR": base_model_dir,
        "ALLOWED_HOSTS": env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if not debug else ["*"]),
        # Persistent connections save a connect per request (PostgreSQL); 0 closes after each request.
        "DATABASE": env_database(
            "DATABASE_URL", BASE_DIR / "var" / "db.sqlite3",
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        ),
        # Database 1, not 0: a Redis already running on the machine usually holds other programs'
        # keys in 0 (config/stack.py says which database the app uses when it joins one).
        "REDIS_URL": env_redis_url("REDIS_URL", "redis://127.0.0.1:6379/1"),
        "HTTPS": _https_settings(debug),
    }


def _https_settings(debug: bool) -> dict:
    """HTTPS hardening: on by default when DEBUG is off, off in development, each switch in the env.

    SECURE_COOKIES=0 (plain-HTTP trial, benchmarks) also turns the redirect and HSTS off unless they
    are set, so one switch says "this deployment is not behind HTTPS".
    """
    if debug:
        return {"cookies": False, "redirect": False, "hsts_seconds": 0, "hsts_subdomains": False,
                "hsts_preload": False, "proxy_header": None}
    cookies = env_bool("SECURE_COOKIES", True)
    redirect = env_bool("SECURE_SSL_REDIRECT", cookies)
    hsts_seconds = env_int("SECURE_HSTS_SECONDS", 31_536_000 if redirect else 0, minimum=0)
    return {
        "cookies": cookies,
        "redirect": redirect,
        "hsts_seconds": hsts_seconds,
        "hsts_subdomains": env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", hsts_seconds > 0),
        # Preloading is a promise to browsers that is slow to undo: only on request.
        "hsts_preload": env_bool("SECURE_HSTS_PRELOAD", False),
        "proxy_header": env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER"),
    }


try:
    _env = _load()
except SettingError as exc:
    # One line, no traceback: this is an operator's mistake, not a bug.
    sys.stderr.write(f"Configuration error: {exc}\n")
    raise SystemExit(2) from None

DEBUG = _env["DEBUG"]
SECRET_KEY = _env["SECRET_KEY"]
ALLOWED_HOSTS = _env["ALLOWED_HOSTS"]
DATA_DIR: Path = _env["DATA_DIR"]
BASE_MODEL_DIR: Path | None = _env["BASE_MODEL_DIR"]
REDIS_URL: str = _env["REDIS_URL"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / ReDoc files served by the app itself
    "django_celery_beat",
    "annotate",
    "mining",
    "training",
]

MIDDLEWARE = [
    # Outermost, so it sees every error answer of /api/, DEBUG's HTML pages included.
    "config.errors.ApiErrorsAsJson",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "annotate.language.UserLanguageMiddleware",  # a signed-in user's saved language wins
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": _env["DATABASE"]}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"

# Uploaded import files are kept under DATA_DIR until their job has run.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
IMPORT_UPLOAD_MAX_BYTES = env_int("IMPORT_UPLOAD_MAX_BYTES", 512 * 1024 * 1024, minimum=1)

CSRF_COOKIE_HTTPONLY = False
SESSION_COOKIE_HTTPONLY = True
# Database sessions read with plain SQL (config/sessions.py says why not Redis or a memory cache).
SESSION_ENGINE = "config.sessions"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
_https = _env["HTTPS"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _https["cookies"]
SECURE_SSL_REDIRECT = _https["redirect"]
SECURE_HSTS_SECONDS = _https["hsts_seconds"]
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https["hsts_subdomains"]
SECURE_HSTS_PRELOAD = _https["hsts_preload"]
# Behind a TLS-terminating proxy the request arrives as HTTP: trust the proxy's header (only if set).
SECURE_PROXY_SSL_HEADER = _https["proxy_header"]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Failed logins per username (login page and HTTP Basic on the API) before a lockout; see
# config/login_throttle.py. The counter lives in the "login_throttle" cache.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60, minimum=1)
AUTHENTICATION_BACKENDS = ["config.login_throttle.ThrottledModelBackend"]
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # In Redis, development included: the count must be the one every web process sees and that
    # `manage.py unlock_login`, another process, clears (an in-memory count could not be).
    "login_throttle": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                       "KEY_PREFIX": "login-throttle", "TIMEOUT": LOGIN_LOCKOUT_SECONDS,
                       # A Redis that does not answer must not hold up a login for long (the throttle fails open).
                       "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "config.login_throttle.ThrottledBasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "config.openapi.ViewScopedNames",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Relevance Studio API",
    "DESCRIPTION": "Graded relevance judgments, hard-negative mining, export and reranker training.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema describes every route; only people with an account need it.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # <id:...> (config/converters.py): an integer of at most 18 digits.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}},
    # Swagger UI and ReDoc from the app's static files: the docs render with no network.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: one Redis for broker and results. Work is acknowledged after it ran (acks_late), so a
# killed worker's task is redelivered; every task is written to be safe to run twice.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "mining.*": {"queue": "mining"},
    "training.*": {"queue": "training"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"client_errors_without_traceback": {"()": "config.log_filters.ClientErrorsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["client_errors_without_traceback"]}},
    "root": {"handlers": ["console"], "level": "INFO" if DEBUG else "WARNING"},
    "loggers": {
        "jieba": {"level": "WARNING"},
        # Django's default config gives "django" a console handler of its own under DEBUG, and the
        # record then also reaches the root's: every 403 was printed twice. One handler, the root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
    },
}
