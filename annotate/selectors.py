"""Reads. Every query an annotator's request makes goes through a selector that scopes it."""
from __future__ import annotations

from .models import Candidate, Collection, Document, Judgment, Query


def collection_totals(collection: Collection) -> dict:
    """The totals `import_data --json` prints."""
    return {
        "collection": collection.slug,
        "documents": Document.objects.filter(collection=collection).count(),
        "queries": Query.objects.filter(collection=collection).count(),
        "candidates": Candidate.objects.filter(collection=collection).count(),
        "judgments": Judgment.objects.filter(collection=collection).count(),
    }
