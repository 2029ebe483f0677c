"""A collection's judgments read into the statistics' inputs (annotate/agreement/): the read side of quality.

- `collection_ratings`: people's standing grades as Ratings (items are candidates, annotators
  users), for agreement alone (the `agreement` command).
- `load_table`: people's standing judgments, graded or skipped, as a JudgmentTable with each item's
  query and gold grade, for the full report (agreement plus per-annotator figures).

Which judgments count is the Judgment QuerySet's rule (`people_grades`, `by_people().standing()`);
an AgreementScope narrows them to a subset (a query, an annotator pair, a date range, a guideline
version). Rows go straight into integer arrays, never through model instances.
"""
from __future__ import annotations

from array import array

import numpy as np
from django.db import connection
from django.db.models import Case, F, FloatField, IntegerField, Value, When
from django.db.models.functions import Cast, Coalesce

from ..agreement import Ratings, Scale
from ..agreement.annotators import JudgmentTable
from ..models import Collection, Judgment
from .scope import AgreementScope

CHUNK = 20_000


def _scoped(judgments, collection: Collection, scope: AgreementScope | None):
    return scope.apply(collection, judgments) if scope is not None else judgments


def collection_ratings(collection: Collection, scope: AgreementScope | None = None) -> Ratings:
    """(candidate id, annotator user id, grade) of every person's grade in the collection (or scope)."""
    candidates, annotators, grades = array("q"), array("q"), array("q")
    judgments = _scoped(Judgment.objects.filter(collection=collection).people_grades(), collection, scope)
    rows = judgments.values_list("candidate_id", "annotator_id", "grade")
    for candidate_id, annotator_id, grade in rows.iterator(chunk_size=CHUNK):
        candidates.append(candidate_id)
        annotators.append(annotator_id)
        grades.append(grade)
    return Ratings.from_arrays(
        np.frombuffer(candidates, dtype=np.int64), np.frombuffer(annotators, dtype=np.int64),
        np.frombuffer(grades, dtype=np.int64), scale=Scale(),
    )


def _rows(collection: Collection, scope: AgreementScope | None) -> np.ndarray:
    """(judgment order, candidate, annotator, grade or -1, seconds or -1, query, gold grade or -1),
    with one SQL statement."""
    judgments = _scoped(Judgment.objects.filter(collection=collection).by_people().standing(), collection, scope)
    rows = judgments.order_by().values_list(
        "pk", "candidate_id", "annotator_id",
        Coalesce("grade", Value(-1)),
        Coalesce(Cast("seconds_spent", FloatField()), Value(-1.0)),
        F("candidate__query_id"),
        Case(When(candidate__is_gold=True, then=Coalesce("candidate__gold_grade", Value(-1))),
             default=Value(-1), output_field=IntegerField()),
    )
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    if not fetched:
        return np.zeros((0, 7))
    return np.array(fetched, dtype=np.float64)


def load_table(collection: Collection, scope: AgreementScope | None = None) -> tuple[JudgmentTable, np.ndarray, np.ndarray]:
    """The judgment table, each item's query pk (by item code) and each item's candidate pk."""
    rows = _rows(collection, scope)
    rows = rows[np.argsort(rows[:, 0], kind="stable")]  # ids grow with time: the order judgments were made
    candidate = rows[:, 1].astype(np.int64)
    item_ids, item = np.unique(candidate, return_inverse=True)
    annotator_ids, annotator = np.unique(rows[:, 2].astype(np.int64), return_inverse=True)
    seconds = rows[:, 4].copy()
    seconds[seconds < 0] = np.nan
    item_query = np.zeros(len(item_ids), dtype=np.int64)
    item_query[item] = rows[:, 5].astype(np.int64)
    table = JudgmentTable(
        item=item.reshape(-1).astype(np.int64), annotator=annotator.reshape(-1).astype(np.int64),
        grade=rows[:, 3].astype(np.int64), seconds=seconds, gold=rows[:, 6].astype(np.int64),
        annotator_ids=annotator_ids, n_items=len(item_ids),
    )
    return table, item_query, item_ids
