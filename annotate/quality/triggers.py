"""Debounce and one-at-a-time for the agreement report, kept in Redis.

Keys per collection (all small, all with a TTL where a crash could leave them behind):
- `quality:<id>:new`     INCR per new judgment since the last report task was queued;
- `quality:<id>:queued`  set (NX) by the one caller that queues a report task; cleared by the task;
- `quality:<id>:lock`    held (NX, with expiry) by the task computing the report: one at a time;
- `quality:<id>:again`   a run that found the lock taken asks the running one to go once more.

`count_judgment` is on the judging hot path: one pipelined round trip (INCR + EXPIRE) in the
common case, a SET NX only when the count reaches N. When Redis does not answer it
gives up after a short timeout and stays quiet for a while (a circuit breaker), so grades are never
slowed down or failed by it. The judgments counted during an outage are lost with it, so the first
judgment that reaches Redis again queues a report at once (`_missed`); the nightly run catches up
the rest.
"""
from __future__ import annotations

import logging
import time
import uuid
from contextlib import contextmanager

from django.conf import settings

from config.redis_client import redis_client

log = logging.getLogger(__name__)

SOCKET_TIMEOUT = 0.25
QUIET_AFTER_FAILURE = 30.0  # seconds without trying Redis once it failed
QUEUED_TTL = 3600
LOCK_TTL = 1800
COUNT_TTL = 7 * 24 * 3600  # a collection nobody judges for a week starts counting afresh

_quiet_until = 0.0
_missed = False  # judgments went uncounted (Redis was down) since the last report was queued


def key(collection_id: int, name: str) -> str:
    return f"quality:{collection_id}:{name}"


def client():
    return redis_client(timeout=SOCKET_TIMEOUT)


def redis_quiet() -> bool:
    return time.monotonic() < _quiet_until


def note_failure(error: Exception) -> None:
    global _quiet_until, _missed
    quiet = float(getattr(settings, "QUALITY_TRIGGER_QUIET_S", QUIET_AFTER_FAILURE))
    _quiet_until = time.monotonic() + quiet
    _missed = True
    log.warning("agreement report trigger skipped: Redis unavailable (%s); retrying in %.0f s", error, quiet)


def count_judgment(collection_id: int, every: int) -> bool:
    """Count one new judgment; True for the one caller that should queue the report task now."""
    global _missed
    redis = client()
    pipe = redis.pipeline(transaction=False)
    pipe.incr(key(collection_id, "new"))
    pipe.expire(key(collection_id, "new"), COUNT_TTL)
    count, _ = pipe.execute()
    if count < every and not _missed:
        return False
    if not redis.set(key(collection_id, "queued"), "1", nx=True, ex=QUEUED_TTL):
        return False  # one is queued or running; it re-checks the count when it ends
    redis.set(key(collection_id, "new"), 0)
    _missed = False
    return True


def mark_queued(collection_id: int) -> bool:
    """Claim the 'queued' slot for a run that is not triggered by judgments (nightly)."""
    return bool(client().set(key(collection_id, "queued"), "1", nx=True, ex=QUEUED_TTL))


def clear_queued(collection_id: int) -> None:
    client().delete(key(collection_id, "queued"))


def pending(collection_id: int) -> int:
    return int(client().get(key(collection_id, "new")) or 0)


class Busy(Exception):
    """Another run holds the collection's report lock."""


@contextmanager
def report_lock(collection_id: int):
    """Hold the collection's report lock; raise Busy (after asking for another run) if it is taken."""
    redis = client()
    token = uuid.uuid4().hex
    if not redis.set(key(collection_id, "lock"), token, nx=True, ex=LOCK_TTL):
        redis.set(key(collection_id, "again"), "1", ex=LOCK_TTL)
        raise Busy(collection_id)
    try:
        yield
    finally:
        # Release only our own lock (it may have expired and been taken by another run).
        redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                   1, key(collection_id, "lock"), token)


def take_again(collection_id: int) -> bool:
    return bool(client().delete(key(collection_id, "again")))
