"""Database sessions, read with one plain SQL statement.

Every request of a signed-in person reads their session. Django's database store builds that
read through the ORM, which costs several times the CPU of running it (measured: 0.35 ms of CPU
per read through the ORM against 0.04 ms for the same SELECT by primary key). Writes, expiry and
the session's security properties stay Django's: this only replaces how a session row is read.

Kept in the database rather than in Redis on purpose: a Redis outage must not sign everyone out or
fail their grades, and a per-process memory cache would keep a logged-out session alive in the
other web processes.
"""
from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connections, router
from django.utils import timezone


class SessionStore(DatabaseSessionStore):
    def load(self):
        if not self.session_key:
            return {}
        database = connections[router.db_for_read(self.model)]
        with database.cursor() as cursor:
            cursor.execute(
                f"SELECT session_data FROM {self.model._meta.db_table} WHERE session_key = %s AND expire_date > %s",
                [self.session_key, database.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None  # unknown or expired: a new session gets a new key
            return {}
        return self.decode(row[0])
