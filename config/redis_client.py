"""The process's Redis clients (settings.REDIS_URL), one per socket timeout, shared by every app.

A client holds a connection pool, so it is made once and reused: per call it would open a new
connection each time. Callers pick the timeout that suits them: a hot path that must never wait
on Redis (the agreement report's judgment counter) asks for a short one.
"""
from __future__ import annotations

import redis
from django.conf import settings

DEFAULT_TIMEOUT = 5.0
_clients: dict[tuple[str, float], redis.Redis] = {}


def redis_client(*, timeout: float = DEFAULT_TIMEOUT) -> redis.Redis:
    """The shared client for settings.REDIS_URL; `timeout` (seconds) bounds connecting and each call."""
    url = settings.REDIS_URL
    key = (url, timeout)
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return _clients[key]
