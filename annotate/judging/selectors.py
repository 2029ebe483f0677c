"""Reads for the judging page and its API: what an annotator may see of a task, and their progress.

Blind judging: nothing here exposes another annotator's grade, a candidate's source, rank or
score, or a gold flag — only the text, the annotator's own judgment and their own order.
"""
from __future__ import annotations

import json

from django.db import connection
from django.db.models import Count, Q, Sum
from django.http import Http404
from django.utils import timezone
from django.utils.safestring import mark_safe

from mining.text.highlight import highlight, query_terms

from ..models import (
    Candidate,
    Collection,
    GuidelineAcknowledgement,
    Judgment,
    Lease,
)
from . import assignment
from .guidelines import language_for


def own_lease(user, lease_id) -> Lease:
    """A lease of this user's; anyone else's is a 404, staff included (nobody judges in another's task)."""
    lease = Lease.objects.select_related("collection", "query").filter(pk=lease_id, annotator=user).first()
    if lease is None:
        raise Http404("no such task")
    return lease


def own_lease_items(user, lease_id) -> Lease:
    """own_lease for the grade's hot path: only the lease's ids and items, read in plain SQL (the
    ORM's query building costs more CPU than the read). Other fields load on first use."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, collection_id, query_id, items FROM {Lease._meta.db_table} WHERE id = %s AND annotator_id = %s",
            [lease_id, user.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise Http404("no such task")
    *ids, items = row
    # from_db takes the values in the model's field order: id, collection, query, ..., items.
    return Lease.from_db(connection.alias, ["id", "collection_id", "query_id", "items"],
                         [*ids, json.loads(items) if isinstance(items, str) else items])


def needs_acknowledgement(user, collection: Collection) -> bool:
    known = getattr(collection, "guideline_acknowledged", None)  # read along with the collection
    if known is not None:
        return not known
    return not GuidelineAcknowledgement.objects.filter(user=user, version=collection.guideline_version).exists()


def progress(lease: Lease) -> dict:
    """The annotator's counts in this task, today and in all (``mine``), and the collection's
    (``overall``, what the page's "Collection" bar shows)."""
    user_id, collection_id = lease.annotator_id, lease.collection_id
    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    done = Judgment.objects.standing().filter(collection_id=collection_id, annotator_id=user_id).aggregate(
        task=Count("pk", filter=Q(candidate_id__in=lease.items)),
        today=Count("pk", filter=Q(updated_at__gte=start_of_day)),
        overall=Count("pk"),
    )
    assigned = Lease.objects.filter(
        collection_id=collection_id, annotator_id=user_id, status__in=[Lease.Status.ACTIVE, Lease.Status.DONE]
    ).values_list("items", "acquired_at")
    assigned_total = assigned_today = 0
    for items, acquired_at in assigned:
        assigned_total += len(items)
        assigned_today += len(items) if acquired_at >= start_of_day else 0
    return {
        "task": {"done": done["task"], "assigned": len(lease.items)},
        "today": {"done": done["today"], "assigned": assigned_today},
        "mine": {"done": done["overall"], "assigned": assigned_total},
        "overall": collection_progress(lease.collection_id, lease.collection.overlap_k),
    }


def collection_progress(collection_id: int, k: int) -> dict:
    """The whole collection's judging: people's standing grades (a pair's extra grades beyond k
    are rare and counted) of the k per candidate it needs."""
    needed = Candidate.objects.filter(collection_id=collection_id).count() * k
    given = Judgment.objects.standing().filter(collection_id=collection_id, annotator__isnull=False).count()
    return {"done": min(given, needed), "assigned": needed}


def task_payload(lease: Lease, *, language: str | None = None) -> dict:
    """Everything the judging page and the API show of one task."""
    collection = lease.collection
    order = assignment.task_candidate_ids(lease)
    candidates = {c.pk: c for c in Candidate.objects.filter(pk__in=order).select_related("document")}
    judgments = {
        j.candidate_id: j
        for j in Judgment.objects.filter(annotator_id=lease.annotator_id, candidate_id__in=order)
    }
    terms = query_terms(lease.query.text, method=collection.tokenizer)
    rows = []
    for position, candidate_id in enumerate(order):
        document = candidates[candidate_id].document
        judgment = judgments.get(candidate_id)
        standing = judgment is not None and not judgment.withdrawn
        rows.append({
            "id": candidate_id,
            "position": position + 1,
            "title": document.title,
            "title_html": mark_safe(highlight(document.title, terms)),  # noqa: S308 - escaped there
            "text": document.text,
            "text_html": mark_safe(highlight(document.text, terms)),  # noqa: S308 - escaped there
            "grade": judgment.grade if standing else None,
            "skipped": bool(standing and judgment.skipped),
            "skip_reason": judgment.skip_reason if standing else "",
            "flagged": bool(judgment and judgment.flagged),
            "note": judgment.note if judgment else "",
        })
    return {
        "task": lease.pk,
        "status": lease.status,
        "expires_at": lease.expires_at.isoformat() if lease.expires_at else None,
        "pinned": lease.pinned,
        "collection": {
            "slug": collection.slug,
            "name": collection.name,
            "judging_view": collection.judging_view,
            "guideline_version": collection.guideline_version,
        },
        "query": {"text": lease.query.text, "terms": terms},
        "candidates": rows,
        "progress": progress(lease),
        "language": language_for(language),
    }


def seconds_spent_total(user, collection: Collection) -> float:
    return Judgment.objects.filter(collection=collection, annotator=user).aggregate(s=Sum("seconds_spent"))["s"] or 0.0
