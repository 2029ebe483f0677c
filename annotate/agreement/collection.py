"""Ratings of a collection from the database: people's grades only (the selector side of agreement).

Items are candidates, annotators are users. Skipped, withdrawn and imported (source) judgments are
not grades given by a person, so they are left out. Rows are streamed in chunks straight into
integer arrays, never as model instances. An AgreementScope narrows them to a subset (a query, an
annotator pair, a date range, a guideline version).
"""
from __future__ import annotations

from array import array

import numpy as np

from annotate.models import GRADE_MAX, GRADE_MIN, Collection, Judgment

from .ratings import Ratings, Scale
from .scope import AgreementScope

CHUNK = 20_000


def human_judgments(collection: Collection, scope: AgreementScope | None = None):
    judgments = Judgment.objects.filter(
        collection=collection, annotator__isnull=False, grade__isnull=False, skipped=False, withdrawn=False,
    )
    return scope.apply(collection, judgments) if scope is not None else judgments


def collection_ratings(collection: Collection, scope: AgreementScope | None = None) -> Ratings:
    """(candidate id, annotator user id, grade) of every person's grade in the collection (or scope)."""
    candidates, annotators, grades = array("q"), array("q"), array("q")
    rows = human_judgments(collection, scope).values_list("candidate_id", "annotator_id", "grade")
    for candidate_id, annotator_id, grade in rows.iterator(chunk_size=CHUNK):
        candidates.append(candidate_id)
        annotators.append(annotator_id)
        grades.append(grade)
    return Ratings.from_arrays(
        np.frombuffer(candidates, dtype=np.int64), np.frombuffer(annotators, dtype=np.int64),
        np.frombuffer(grades, dtype=np.int64), scale=Scale(GRADE_MIN, GRADE_MAX),
    )
