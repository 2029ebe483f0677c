"""Is the worker running a job still alive? One vocabulary for every kind of job.

A job is named by its kind and primary key. The worker *holds* the job while it works on it
(`hold`); anyone else may ask whether the job was *abandoned*, its worker gone (`abandoned`,
`is_alive`). Two mechanisms answer, chosen per kind (`KINDS`):

- an advisory lock, for long jobs that have one worker each (imports, training runs): the task
  takes a session-level PostgreSQL advisory lock on a connection of its own and keeps it until the
  job's final status is written. When the worker dies (SIGKILL, the OOM killer, a lost machine) its
  sockets close, PostgreSQL ends the session and the lock goes with it: `abandoned` can take it at
  once, with no clock and no grace period. A worker cut off by a network partition keeps its session
  until TCP keepalive gives up; callers that care add a heartbeat age as a backstop and fence their
  writes with the job's attempt number (annotate/models/jobs.py).
  SQLite has no advisory locks: every hold is granted and nothing counts as abandoned (no recovery on
  a single developer's laptop).
- a heartbeat key, for many short tasks shared by many workers (mining chunks): a thread refreshes
  ``<kind>:<pk>:alive`` in Redis every `HEARTBEAT_INTERVAL` seconds with a `HEARTBEAT_TTL` expiry;
  a killed worker stops refreshing it and the key expires.

Either way a Celery message of a killed worker would come back only after the broker's visibility
timeout (an hour here): far too long for a job page or an annotator waiting for work.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

from .redis_client import redis_client

log = logging.getLogger(__name__)

ADVISORY_LOCK = "advisory lock"
HEARTBEAT = "heartbeat"
# kind -> mechanism. Each advisory-lock kind has its own key space (the number), so import 7 and
# training run 7 never share a lock.
KINDS = {"import": (ADVISORY_LOCK, 1), "training": (ADVISORY_LOCK, 2), "machine-judge": (ADVISORY_LOCK, 3),
         "mining:chunk": (HEARTBEAT, None)}
HEARTBEAT_TTL = 10  # seconds a heartbeat is believed
HEARTBEAT_INTERVAL = 2.0


def _mechanism(kind: str) -> tuple[str, int | None]:
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {', '.join(KINDS)}")
    return KINDS[kind]


def lock_key(kind: str, pk: int) -> int:
    mechanism, namespace = _mechanism(kind)
    if mechanism != ADVISORY_LOCK:
        raise ValueError(f"{kind} jobs are kept alive by a {mechanism}, not an advisory lock")
    return (namespace << 48) | int(pk)


def heartbeat_key(kind: str, pk: int) -> str:
    return f"{kind}:{pk}:alive"


def _locks_supported(using: str) -> bool:
    return connections[using].vendor == "postgresql"


class WorkerHold:
    """The worker's advisory lock on a job, on a connection that only it uses (so the task's own
    connection may open and close transactions, or be closed, without losing it)."""

    def __init__(self, kind: str, pk: int, *, using: str = DEFAULT_DB_ALIAS):
        self.key = lock_key(kind, pk)
        self.connection = None
        if _locks_supported(using):
            main = connections[using]
            self.connection = type(main)({**main.settings_dict, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False},
                                         alias=f"hold-{kind}-{pk}")

    def acquire(self) -> bool:
        """True when this task now holds the job; False when a live session already does."""
        if self.connection is None:
            return True
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
            return bool(cursor.fetchone()[0])

    def release(self) -> None:
        if self.connection is None:
            return
        try:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
        except Exception:  # the session is gone already, and its lock with it
            log.debug("advisory unlock of %s failed", self.key, exc_info=True)
        finally:
            self.connection.close()


class Heartbeat:
    """The worker's heartbeat key for a job: set at once, then refreshed by a thread until released."""

    def __init__(self, kind: str, pk: int, *, worker: str = ""):
        self.key = heartbeat_key(kind, pk)
        self.worker = worker or "?"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{kind}-{pk}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            try:
                redis_client().set(self.key, self.worker, ex=HEARTBEAT_TTL)
            except Exception:  # a Redis hiccup: the next beat tries again; the TTL covers a few misses
                pass

    def acquire(self) -> bool:
        """Always True: a heartbeat excludes nobody (the job's own claim does). Raises while Redis is down."""
        redis_client().set(self.key, self.worker, ex=HEARTBEAT_TTL)  # before the job is marked running
        self._thread.start()
        return True

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        try:
            redis_client().delete(self.key)
        except Exception:  # the key expires by itself
            pass


@contextmanager
def hold(kind: str, pk: int, *, worker: str = "") -> Iterator[bool]:
    """The worker's side: the job counts as alive while the body runs. Yields False when a live
    worker holds it already (an advisory lock is exclusive), so the caller backs off."""
    mechanism, _ = _mechanism(kind)
    holder = WorkerHold(kind, pk) if mechanism == ADVISORY_LOCK else Heartbeat(kind, pk, worker=worker)
    try:
        yield holder.acquire()
    finally:
        holder.release()


def is_alive(kind: str, pk: int) -> bool:
    """Does a live worker hold the job right now? (A check only: nothing is held afterwards.)"""
    with abandoned(kind, pk) as gone:
        return not gone


@contextmanager
def abandoned(kind: str, pk: int, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[bool]:
    """Anyone else's side: yields True if no live worker holds the job (its worker is gone).

    With an advisory lock the lock is held for the body, so a task that starts on the job meanwhile
    finds it taken and backs off; the body should enqueue any new message only after the block (once
    the lock is released). A heartbeat excludes nobody: writes after it are fenced by the attempt.
    """
    mechanism, _ = _mechanism(kind)
    if mechanism == HEARTBEAT:
        yield not redis_client().exists(heartbeat_key(kind, pk))
        return
    if not _locks_supported(using):
        yield False
        return
    key = lock_key(kind, pk)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
