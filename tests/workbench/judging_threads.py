"""Annotators judging at the same time, each in a thread with its own database connection (tests only)."""
from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection

from annotate.judging import assignment
from annotate.judging import services as judging
from annotate.models import Candidate


def judge_task(user, lease, *, skip: Callable[[int, int], bool] = lambda user_id, candidate_id: False,
               prefix: str = "") -> None:
    """Grade (user id % 4) or skip every candidate of the task, then finish it."""
    for cid in assignment.task_candidate_ids(lease):
        candidate = Candidate(pk=cid, query_id=lease.query_id, collection_id=lease.collection_id)
        if skip(user.pk, cid):
            judging.record_judgment(annotator=user, candidate=candidate, grade=None, skipped=True,
                                    skip_reason="cannot tell", idempotency_key=f"{prefix}{user.pk}-{cid}")
        else:
            judging.record_judgment(annotator=user, candidate=candidate, grade=user.pk % 4,
                                    idempotency_key=f"{prefix}{user.pk}-{cid}")
    assignment.finish_task(lease=lease)


def drain(collection_id: int, user_id: int, errors: list, *, skip=lambda user_id, candidate_id: False,
          received: dict | None = None) -> None:
    """Ask for work until none is left, judging every task; what went wrong lands in `errors`."""
    from django.contrib.auth import get_user_model

    from annotate.models import Collection

    try:
        collection = Collection.objects.get(pk=collection_id)
        user = get_user_model().objects.get(pk=user_id)
        while (lease := assignment.next_task(collection=collection, annotator=user)) is not None:
            if received is not None:
                received.setdefault(user_id, []).extend(lease.items)
            judge_task(user, lease, skip=skip)
    except Exception as exc:  # surfaced by the test thread
        errors.append(exc)
    finally:
        connection.close()


def run_together(*targets: tuple) -> list[Exception]:
    """Start (function, args, kwargs) threads at once, wait for all; the errors they collected."""
    errors: list[Exception] = []
    threads = [threading.Thread(target=function, args=(*args, errors), kwargs=kwargs)
               for function, args, kwargs in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a judging thread hung"
    return errors
