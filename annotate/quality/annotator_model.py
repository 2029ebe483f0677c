"""The collection's annotator model, fitted on exactly the judgments an export counts.

Every judge gets a confusion of their own (annotate/agreement/annotator_model.py): each person, and
each imported source (a qrels file, a labelled file) under its source name. Gold candidates are
clamped to their gold grade and adjudicated ones to the latest adjudication (final). The export
then reads each pair's posterior from the fitted parameters (`posterior`), so two pairs graded the
same way by the same judges get the same record and the aggregate can be cached by judge set.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection
from django.db.models import QuerySet

from ..agreement.annotator_model import AnnotatorModel, fit_annotator_model
from ..grades import GRADES
from ..models import Adjudication, Candidate

SOURCE_MARK = "~"  # an imported label's judge in a judgment key: "~<source>" (commas as %2C)


def judge_name(annotator_pk: int | None, source: str) -> str:
    """A judge's name in judgment keys: the annotator's pk, or "~<source>" for an imported label
    (commas escaped: a judgment key joins its judgments with commas)."""
    return str(annotator_pk) if annotator_pk is not None else SOURCE_MARK + source.replace(",", "%2C")


def judge_key(annotator_pk: int | None, source: str, grade: int) -> str:
    """One judgment in a judgment key: "<judge name>:<grade>"."""
    return f"{judge_name(annotator_pk, source)}:{grade}"


class CollectionAnnotatorModel:
    """A fitted model with the names of its judges: person pks and "~<source>" names."""

    def __init__(self, model: AnnotatorModel | None, judges: dict[str, int]):
        self.model = model
        self.judges = judges

    def posterior(self, judgments: Sequence[tuple[str, int]]) -> np.ndarray:
        """The posterior over grades 0..3 of a pair graded by these (judge name, grade); a judge the
        fit did not see (none, when the export's filters match the fit's) counts as the population."""
        if self.model is None:
            raise ValueError("the collection had no judgments to fit the annotator model on")
        return self.model.posterior_for([(self.judges.get(name), grade) for name, grade in judgments])


def fit_collection_model(judgments: QuerySet, *, collection, include_sources: bool) -> CollectionAnnotatorModel:
    """Fit on `judgments` (standing grades passing the export's filters) of `collection`."""
    rows = judgments.filter(collection=collection)
    if not include_sources:
        rows = rows.filter(annotator__isnull=False)
    items: dict[int, int] = {}
    judges: dict[str, int] = {}
    item, judge, grade = [], [], []
    for candidate_pk, annotator_pk, source, value in _fetch(rows.values_list("candidate_id", "annotator_id", "source",
                                                                            "grade")):
        item.append(items.setdefault(candidate_pk, len(items)))
        judge.append(judges.setdefault(judge_name(annotator_pk, source), len(judges)))
        grade.append(value)
    if not item:
        return CollectionAnnotatorModel(None, {})
    gold = {items[pk]: value for pk, value in Candidate.objects.filter(
        collection=collection, is_gold=True, pk__in=list(items)).values_list("pk", "gold_grade") if pk in items}
    final: dict[int, int] = {}
    for pk, value in (Adjudication.objects.filter(collection=collection).order_by("candidate_id", "-created_at", "-pk")
                      .values_list("candidate_id", "grade")):
        if pk in items:
            final.setdefault(items[pk], value)  # the latest comes first
    model = fit_annotator_model(np.asarray(item), np.asarray(judge), np.asarray(grade), n_items=len(items),
                                n_judges=len(judges), n_grades=len(GRADES), gold=gold, final=final)
    return CollectionAnnotatorModel(model, judges)


def _fetch(rows) -> list[tuple]:
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
