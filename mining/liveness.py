"""Is the worker mining a chunk still alive? A heartbeat key in Redis says so.

While a chunk task runs, a thread refreshes ``mining:chunk:<id>:alive`` every few seconds with a
short expiry. A worker killed with SIGKILL (or a lost machine) stops refreshing it, the key
expires within `TTL` seconds, and any other worker may give the chunk back to the queue. Celery
itself would redeliver the unacknowledged message only after the broker's visibility timeout
(an hour here), which is far too long for an annotator waiting for work.
"""
from __future__ import annotations

import threading

from django.conf import settings

TTL = 10  # seconds a heartbeat is believed
INTERVAL = 2.0
_clients: dict = {}


def _redis():
    import redis

    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return _clients[url]


def _key(chunk_pk: int) -> str:
    return f"mining:chunk:{chunk_pk}:alive"


def is_alive(chunk) -> bool:
    return bool(_redis().exists(_key(chunk.pk)))


class Heartbeat:
    """Context manager: the chunk counts as alive while the body runs."""

    def __init__(self, chunk_pk: int, worker: str = ""):
        self.key = _key(chunk_pk)
        self.worker = worker or "?"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{chunk_pk}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                _redis().set(self.key, self.worker, ex=TTL)
            except Exception:  # a Redis hiccup: the next beat tries again; TTL covers a few misses
                pass

    def __enter__(self):
        _redis().set(self.key, self.worker, ex=TTL)  # before the chunk is marked running
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        try:
            _redis().delete(self.key)
        except Exception:
            pass
        return False


def new_watch_token(job_pk: int, *, ttl: float) -> str:
    """Make a new watcher the job's current one; older watchers find their token replaced."""
    import uuid

    token = uuid.uuid4().hex
    _redis().set(f"mining:watch:{job_pk}", token, ex=int(ttl) + 1)
    return token


def is_current_watch_token(job_pk: int, token: str) -> bool:
    current = _redis().get(f"mining:watch:{job_pk}")
    return current is not None and current.decode() == token


def claim_once(name: str, seconds: int) -> bool:
    """True for the first caller in `seconds` (a Redis SET NX): an action at most once per period."""
    return bool(_redis().set(f"mining:once:{name}", "1", nx=True, ex=seconds))

