"""Is the worker running a long job (an import, a training run) still alive? Its database session says so.

The task takes a session-level PostgreSQL advisory lock keyed by the job (`WorkerHold`) on a
connection of its own, and keeps it until the job's final status is written. When the worker dies
(SIGKILL, the OOM killer, a lost machine) its sockets close, PostgreSQL ends the session and the
lock goes with it: `abandoned` can then take it, at once, with no clock and no grace period. A
Celery message of a killed worker comes back only after the broker's visibility timeout (an hour
here), so without this a job would show "running" all that time.

A worker cut off by a network partition keeps its session until TCP keepalive gives up; callers
that care add a heartbeat age as a backstop and fence their writes (a run's attempt number).

SQLite has no advisory locks: every hold is granted and nothing counts as abandoned (no recovery on a
single developer's laptop).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

log = logging.getLogger(__name__)

# One key space per kind of job, so import 7 and training run 7 never share a lock.
NAMESPACES = {"import": 1, "training": 2}


def lock_key(namespace: str, pk: int) -> int:
    if namespace not in NAMESPACES:
        raise ValueError(f"unknown job kind {namespace!r}; expected one of {', '.join(NAMESPACES)}")
    return (NAMESPACES[namespace] << 48) | int(pk)


def _supported(using: str) -> bool:
    return connections[using].vendor == "postgresql"


class WorkerHold:
    """The running task's claim on a job: an advisory lock on a connection that only it uses (so
    the task's own connection may open and close transactions, or be closed, without losing it)."""

    def __init__(self, namespace: str, pk: int, *, using: str = DEFAULT_DB_ALIAS):
        self.key = lock_key(namespace, pk)
        self.connection = None
        if _supported(using):
            main = connections[using]
            self.connection = type(main)({**main.settings_dict, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False},
                                         alias=f"hold-{namespace}-{pk}")

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


@contextmanager
def abandoned(namespace: str, pk: int, *, using: str = DEFAULT_DB_ALIAS):
    """Yield True while holding the job's lock if no live session holds it (its worker is gone).

    Held for the body, so a task that starts on the job meanwhile finds it taken and backs off; the
    body should enqueue any new message only after the block (once the lock is released).
    """
    if not _supported(using):
        yield False
        return
    key = lock_key(namespace, pk)
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
