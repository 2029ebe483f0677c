"""Reads. Every query an annotator's request makes goes through a selector that scopes it."""
from __future__ import annotations

from django.db.models import QuerySet

from .models import Candidate, Collection, Document, Judgment, Query


def collections_visible_to(user) -> QuerySet[Collection]:
    """Staff see every collection; annotators only those they are members of."""
    if user.is_staff:
        return Collection.objects.all()
    return Collection.objects.filter(memberships__user=user, is_active=True)


def collection_totals(collection: Collection) -> dict:
    """The totals `import_data --json` prints."""
    return {
        "collection": collection.slug,
        "documents": Document.objects.filter(collection=collection).count(),
        "queries": Query.objects.filter(collection=collection).count(),
        "candidates": Candidate.objects.filter(collection=collection).count(),
        "judgments": Judgment.objects.filter(collection=collection).count(),
    }
