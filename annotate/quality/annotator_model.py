"""The collection's annotator model, fitted on exactly the judgments an export counts.

Every judge gets a confusion of their own (annotate/agreement/annotator_model.py): each person, and
each imported source (a qrels file, a labelled file, the click labels) under its source name. The
people are the population a newcomer is drawn toward; a source is not pooled with them, and EM
starts from the people's grades, so a source weighs as much as it agrees with people. Gold candidates are
clamped to their gold grade and adjudicated ones to the latest adjudication (final). The export
then reads each pair's posterior from the fitted parameters (`posterior`), so two pairs graded the
same way by the same judges get the same record and the aggregate can be cached by judge set.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
from django.db import connection
from django.db.models import Count, Max, QuerySet

from ..agreement.annotator_model import AnnotatorModel, fit_annotator_model
from ..grades import GRADES
from ..models import Adjudication, Candidate, Judgment

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

    def parameters(self) -> dict:
        """What a posterior needs, as JSON (kept in the agreement report; floats round-trip exactly)."""
        model = self.model
        return {"class_prior": model.class_prior.tolist(), "population": model.population_confusion.tolist(),
                "judges": {name: model.confusion[index].tolist() for name, index in self.judges.items()}}

    @classmethod
    def from_parameters(cls, data: dict) -> CollectionAnnotatorModel:
        names = list(data["judges"])
        model = AnnotatorModel(
            class_prior=np.asarray(data["class_prior"], dtype=float),
            confusion=np.asarray([data["judges"][name] for name in names], dtype=float).reshape(
                len(names), len(GRADES), len(GRADES)),
            population_confusion=np.asarray(data["population"], dtype=float),
            posteriors=np.zeros((0, len(GRADES))), judgments_per_judge=np.zeros(len(names), dtype=np.int64),
            log_likelihood=float("nan"), iterations=0, converged=True, judge_strength=float("nan"))
        return cls(model, {name: index for index, name in enumerate(names)})

    def posterior(self, judgments: Sequence[tuple[str, int]]) -> np.ndarray:
        """The posterior over grades 0..3 of a pair graded by these (judge name, grade); a judge the
        fit did not see (none, when the export's filters match the fit's) counts as the population."""
        if self.model is None:
            raise ValueError("the collection had no judgments to fit the annotator model on")
        return self.model.posterior_for([(self.judges.get(name), grade) for name, grade in judgments])


def fit_collection_model(judgments: QuerySet, *, collection, include_sources: bool) -> CollectionAnnotatorModel:
    """Fit on `judgments` (standing grades passing the export's filters) of `collection`.

    Read as integer arrays in chunks (a server-side cursor on PostgreSQL), so a million judgments
    cost ~24 MB, not a Python tuple each; sorted by (candidate, judge) before fitting, so the
    floating-point sums, hence the export's bytes, do not depend on the order rows arrive in."""
    rows = judgments.filter(collection=collection)
    people = _int_rows(rows.filter(annotator__isnull=False), ("candidate_id", "annotator_id", "grade"))
    annotators, person = np.unique(people[:, 1], return_inverse=True)
    names = [str(pk) for pk in annotators.tolist()]
    parts = [(people[:, 0], person.reshape(-1), people[:, 2])]
    if include_sources:
        imported = rows.filter(annotator__isnull=True)
        for source in sorted(set(imported.values_list("source", flat=True).distinct())):
            graded = _int_rows(imported.filter(source=source), ("candidate_id", "grade"))
            parts.append((graded[:, 0], np.full(len(graded), len(names), dtype=np.int64), graded[:, 1]))
            names.append(judge_name(None, source))
    candidate_pk = np.concatenate([part[0] for part in parts])
    if not candidate_pk.size:
        return CollectionAnnotatorModel(None, {})
    judge = np.concatenate([part[1] for part in parts])
    grade = np.concatenate([part[2] for part in parts])
    order = np.lexsort((judge, candidate_pk))
    candidate_pk, judge, grade = candidate_pk[order], judge[order], grade[order]
    candidates, item = np.unique(candidate_pk, return_inverse=True)
    gold = _on_items(candidates, Candidate.objects.filter(collection=collection, is_gold=True)
                     .values_list("pk", "gold_grade"))
    latest: dict[int, int] = {}
    for pk, value in (Adjudication.objects.filter(collection=collection).order_by("candidate_id", "-created_at", "-pk")
                      .values_list("candidate_id", "grade")):
        latest.setdefault(pk, value)  # the latest comes first
    final = _on_items(candidates, latest.items())
    # People form the population; imported labels, click labels and a machine judge are sources of
    # another kind, each with a confusion of its own measured against the people (not pooled).
    pooled = np.array([not name.startswith(SOURCE_MARK) for name in names], dtype=bool)
    model = fit_annotator_model(item.reshape(-1), judge, grade, n_items=len(candidates), n_judges=len(names),
                                n_grades=len(GRADES), gold=gold, final=final, pooled=pooled)
    return CollectionAnnotatorModel(model, {name: index for index, name in enumerate(names)})


def data_state(collection) -> dict:
    """What a fit depends on besides its parameters, cheaply: a fit kept with an equal state was
    made over the same grades, gold and adjudications (an edit bumps updated_at)."""
    judgments = Judgment.objects.grades().filter(collection=collection).aggregate(n=Count("pk"), last=Max("updated_at"))
    return {"judgments": judgments["n"], "last_change": judgments["last"].isoformat() if judgments["last"] else None,
            "adjudications": Adjudication.objects.filter(collection=collection).count(),
            "gold": hashlib.sha256(repr(list(Candidate.objects.filter(collection=collection, is_gold=True)
                                             .order_by("pk").values_list("pk", "gold_grade"))).encode()).hexdigest()}


def kept_or_fitted(report, judgments: QuerySet, *, collection, include_sources: bool,
                   default_filters: bool) -> CollectionAnnotatorModel:
    """The agreement report's fit when it was made over exactly these judgments (every grade of
    the collection, sources included, and the data unchanged since), else a fit now: the report's
    debounced task pays for the fit, an export of unchanged data reads its parameters."""
    kept = ((report.overall or {}).get("annotator_model") or {}) if report is not None else {}
    if (default_filters and include_sources and kept.get("parameters")
            and kept.get("state") == json.loads(json.dumps(data_state(collection)))):
        return CollectionAnnotatorModel.from_parameters(kept["parameters"])
    return fit_collection_model(judgments, collection=collection, include_sources=include_sources)


def _on_items(candidates: np.ndarray, grades) -> dict[int, int]:
    """{item index: grade} for the (candidate pk, grade) pairs whose candidate is one of the fit's."""
    found = {}
    for pk, value in grades:
        position = int(np.searchsorted(candidates, pk))
        if position < len(candidates) and candidates[position] == pk:
            found[position] = value
    return found


_CHUNK = 100_000


def _int_rows(rows: QuerySet, fields: tuple[str, ...]) -> np.ndarray:
    """The rows of integer `fields` as an (n, len(fields)) int64 array, read `_CHUNK` at a time."""
    sql, params = rows.values_list(*fields).order_by().query.sql_with_params()
    parts = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(_CHUNK):
            parts.append(np.array(batch, dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros((0, len(fields)), dtype=np.int64)
