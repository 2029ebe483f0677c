"""Reads for the judging page and its API: what an annotator may see of a task, and their progress.

Blind judging: nothing here exposes another annotator's grade, a candidate's source, rank or
score, or a gold flag — only the text, the annotator's own judgment and their own order.
"""
from __future__ import annotations

from django.db.models import Sum
from django.http import Http404
from django.utils import timezone

from . import assignment
from .guidelines import language_for
from .highlight import highlight, query_terms
from .models import Candidate, Collection, GuidelineAcknowledgement, Judgment, Lease, Membership


def collection_for_member(user, slug: str) -> Collection:
    """The collection if the user may judge or manage it; 404 otherwise (no hint that it exists)."""
    collection = Collection.objects.filter(slug=slug).first()
    if collection is None:
        raise Http404("no such collection")
    if user.is_staff or Membership.objects.filter(collection=collection, user=user).exists():
        return collection
    raise Http404("no such collection")


def own_lease(user, lease_id) -> Lease:
    """A lease of this user's; anyone else's is a 404, staff included (nobody judges in another's task)."""
    lease = Lease.objects.select_related("collection", "query").filter(pk=lease_id, annotator=user).first()
    if lease is None:
        raise Http404("no such task")
    return lease


def needs_acknowledgement(user, collection: Collection) -> bool:
    return not GuidelineAcknowledgement.objects.filter(user=user, version=collection.guideline_version).exists()


def progress(lease: Lease) -> dict:
    user_id, collection = lease.annotator_id, lease.collection
    mine = Judgment.objects.filter(collection=collection, annotator_id=user_id, withdrawn=False)
    task_done = mine.filter(candidate_id__in=lease.items).count()
    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    assigned = Lease.objects.filter(
        collection=collection, annotator_id=user_id, status__in=[Lease.Status.ACTIVE, Lease.Status.DONE]
    )
    assigned_total = sum(len(items) for items in assigned.values_list("items", flat=True))
    assigned_today = sum(
        len(items) for items in assigned.filter(acquired_at__gte=start_of_day).values_list("items", flat=True)
    )
    return {
        "task": {"done": task_done, "assigned": len(lease.items)},
        "today": {"done": mine.filter(updated_at__gte=start_of_day).count(), "assigned": assigned_today},
        "overall": {"done": mine.count(), "assigned": assigned_total},
    }


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
            "title_html": highlight(document.title, terms),
            "text": document.text,
            "text_html": highlight(document.text, terms),
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
