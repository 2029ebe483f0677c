"""A collection's agreement report: every figure at once, read straight from the database.

    report = store_report(collection=collection)          # an AgreementReport row
    data = compute_report(collection, scope=AgreementScope.parse(query="q1"))   # plain JSON, not kept

The judgments are read with one SQL statement into numpy arrays (annotate/quality/ratings.py): people's
judgments that stand (not withdrawn), graded or skipped, with their candidate's query and gold grade.

Report layout (AgreementReport fields; the export reads `per_annotator` and `per_query`):
- overall: `compute_agreement(...).as_json()` without its pair list, plus `queries` (counts of
  queries with an alpha and below the adjudication threshold), `skips`, `gold` and `thresholds`.
- per_annotator: [{annotator_id, username, is_simulated, reliability, reliability_basis,
  consensus_kappa, gold_accuracy, median_seconds, grade_counts, grade_share, drift, skip_share,
  flags, confusion, expected_accuracy, ...}]. For the whole collection, `reliability` is the
  annotator model's (annotate/quality/annotator_model.py): how much a person's grade tells about the
  true grade (0 constant or random, 1 decisive; a consistently shifted grader is decoded, so is
  reliable), `confusion` their 4x4 P(reported | true) and `reliability_basis` ["annotator model"];
  the consensus/gold figure stays as `consensus_reliability`.
- overall.annotator_model: the class prior, the imported sources' confusions and reliabilities,
  EM's iterations (whole-collection reports only).
- per_pair: [{annotator_a_id, annotator_a, annotator_b_id, annotator_b, n_items, kappa,
  kappa_linear, kappa_quadratic, percent_agreement}]
- per_query: the queries whose ordinal alpha is below the collection's `adjudication_alpha`:
  [{query_id, external_id, alpha_ordinal, n_items, n_judgments}], lowest alpha first.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction

from ..agreement import Ratings, Scale, alpha_by_group, compute_agreement
from ..agreement.annotators import JudgmentTable, annotator_quality
from ..agreement.kappa import cohen_kappas
from ..grades import GRADES
from ..models import AgreementReport, AnnotatorProfile, Collection, Judgment, Query
from .annotator_model import SOURCE_MARK, data_state, fit_collection_model
from .ratings import load_table
from .scope import AgreementScope
from .thresholds import QualityThresholds

BOOTSTRAP = 1000


def compute_report(collection: Collection, *, scope: AgreementScope | None = None, bootstrap: int = BOOTSTRAP,
                   thresholds: QualityThresholds | None = None, seed: int = 0) -> dict:
    """All figures of the collection (or a scope of it) as plain JSON values."""
    started = time.perf_counter()
    thresholds = thresholds or QualityThresholds.from_settings()
    table, item_query, _ = load_table(collection, scope)
    graded = table.grade >= 0
    ratings, graded_items = _graded_ratings(table)
    agreement = compute_agreement(ratings, bootstrap=bootstrap, seed=seed)
    users = _users(table.annotator_ids)

    overall = agreement.as_json()
    overall.pop("pairs")
    qualities = annotator_quality(table, thresholds)
    per_query, query_counts = _per_query(collection, ratings, item_query[graded_items])
    on_gold = graded & (table.gold >= 0)
    overall.update({
        "queries": query_counts,
        "skips": int((~graded).sum()),
        "gold": {"judgments": int(on_gold.sum()),
                 "accuracy": _mean_credit(table, on_gold, thresholds)},
        "flagged_annotators": sum(1 for q in qualities if q.flags),
        "thresholds": thresholds.as_json(),
    })
    per_annotator = [_annotator_entry(q, users) for q in qualities]
    if scope is None:
        overall["annotator_model"] = _with_annotator_model(collection, per_annotator)
    return {
        "n_judgments": int(graded.sum()),
        "scope": scope.as_json() if scope is not None else {},
        "overall": overall,
        "per_annotator": per_annotator,
        "per_pair": [_pair_entry(pair, users) for pair in agreement.pairs],
        "per_query": per_query,
        "seconds": time.perf_counter() - started,
    }


@transaction.atomic
def store_report(*, collection: Collection, scope: AgreementScope | None = None, bootstrap: int = BOOTSTRAP) -> AgreementReport:
    """Compute the report and keep it as a new AgreementReport row."""
    data = compute_report(collection, scope=scope, bootstrap=bootstrap)
    return AgreementReport.objects.create(collection=collection, **data)


def _graded_ratings(table: JudgmentTable) -> tuple[Ratings, np.ndarray]:
    """The grades as Ratings (items and annotators with at least one grade, renumbered densely;
    annotator labels are user pks) and, per Ratings item, its item code in the table."""
    graded = table.grade >= 0
    item_codes, item = np.unique(table.item[graded], return_inverse=True)
    annotator_codes, annotator = np.unique(table.annotator[graded], return_inverse=True)
    ratings = Ratings(item.reshape(-1).astype(np.int64), annotator.reshape(-1).astype(np.int64),
                      table.grade[graded], Scale(), item_codes,
                      table.annotator_ids[annotator_codes])
    return ratings, item_codes


def _users(annotator_ids: np.ndarray) -> dict[int, tuple[str, bool]]:
    ids = [int(pk) for pk in annotator_ids]
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    simulated = set(AnnotatorProfile.objects.filter(user_id__in=ids, is_simulated=True).values_list("user_id", flat=True))
    return {pk: (names.get(pk, str(pk)), pk in simulated) for pk in ids}


def _annotator_entry(quality, users) -> dict:
    entry = asdict(quality)
    pk = int(entry.pop("annotator"))
    username, simulated = users[pk]
    return {"annotator_id": pk, "username": username, "is_simulated": simulated, **entry}


def _with_annotator_model(collection: Collection, per_annotator: list[dict]) -> dict:
    """Fit the annotator model on every standing grade (people's and imported sources'), put each
    person's confusion and reliability into their entry, and return the rest of the fit."""
    state = data_state(collection)
    fitted = fit_collection_model(Judgment.objects.grades(), collection=collection, include_sources=True)
    if fitted.model is None:
        return {}
    model = fitted.model
    reliability, accuracy = model.reliability, model.expected_accuracy

    def figures(index: int) -> dict:
        return {"confusion": np.round(model.confusion[index], 3).tolist(),
                "reliability": round(float(reliability[index]), 4),
                "expected_accuracy": round(float(accuracy[index]), 4),
                "model_judgments": int(model.judgments_per_judge[index])}

    for entry in per_annotator:
        index = fitted.judges.get(str(entry["annotator_id"]))
        if index is not None:
            entry["consensus_reliability"] = entry["reliability"]
            entry.update(figures(index), reliability_basis=["annotator model"])
    sources = [{"source": name[len(SOURCE_MARK):].replace("%2C", ","), **figures(index)}
               for name, index in sorted(fitted.judges.items()) if name.startswith(SOURCE_MARK)]
    for entry in sources:
        entry.update(source_kappas_with_people(collection, entry["source"]))
    # The parameters and the state of the data they were fitted on: an export of unchanged data
    # reads them instead of fitting again (annotator_model.kept_or_fitted).
    return {"class_prior": np.round(model.class_prior, 4).tolist(), "sources": sources,
            "iterations": model.iterations, "converged": model.converged,
            "parameters": fitted.parameters(), "state": state}


def source_kappas_with_people(collection, source: str) -> dict:
    """Cohen's kappa (unweighted and linear) between a source (imported labels, click labels, the
    machine judge) and the people: every person's grade of a pair against the source's grade of it,
    pooled over people -- how far the source agrees with people, as sklearn's cohen_kappa_score
    computes it on those two columns. None when they share no pair or it is undefined."""
    of_source = Judgment.objects.grades().filter(collection=collection, annotator__isnull=True, source=source)
    graded = dict(of_source.values_list("candidate_id", "grade"))
    confusion = np.zeros((1, len(GRADES), len(GRADES)))
    for candidate, grade in Judgment.objects.people_grades().filter(
            collection=collection, candidate_id__in=of_source.values("candidate_id")).values_list(
            "candidate_id", "grade").iterator(chunk_size=10_000):
        confusion[0, grade, graded[candidate]] += 1
    kappa, linear = (cohen_kappas(confusion, weights)[0] for weights in ("none", "linear"))
    shown = lambda value: None if np.isnan(value) else float(value)  # noqa: E731 -- full precision: checked against sklearn
    return {"kappa_with_people": shown(kappa), "kappa_linear_with_people": shown(linear),
            "pairs_with_people": int(confusion.sum())}


def _pair_entry(pair, users) -> dict:
    a, b = int(pair.annotator_a), int(pair.annotator_b)
    return {"annotator_a_id": a, "annotator_a": users[a][0], "annotator_b_id": b, "annotator_b": users[b][0],
            "n_items": pair.n_items, "kappa": pair.kappa, "kappa_linear": pair.kappa_linear,
            "kappa_quadratic": pair.kappa_quadratic, "percent_agreement": pair.percent_agreement}


def _mean_credit(table: JudgmentTable, on_gold: np.ndarray, thresholds: QualityThresholds) -> float | None:
    if not on_gold.any():
        return None
    credit = np.asarray(thresholds.gold_credit)[np.abs(table.grade[on_gold] - table.gold[on_gold])]
    return float(credit.mean())


def query_alphas(ratings: Ratings, item_query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(query pks, ordinal alpha, items, judgments) per query that has a grade; alpha NaN if undefined."""
    query_pks, group = np.unique(item_query, return_inverse=True)
    group = group.reshape(-1)
    alphas = alpha_by_group(ratings, group) if ratings.n_items else np.zeros(0)
    judged = np.bincount(ratings.item, minlength=ratings.n_items)
    items = np.bincount(group, weights=(judged > 0), minlength=len(query_pks)).astype(np.int64)
    judgments = np.bincount(group, weights=judged, minlength=len(query_pks)).astype(np.int64)
    return query_pks, alphas, items, judgments


def _per_query(collection: Collection, ratings: Ratings, item_query: np.ndarray) -> tuple[list[dict], dict]:
    threshold = collection.adjudication_alpha
    query_pks, alphas, items, judgments = query_alphas(ratings, item_query)
    defined = ~np.isnan(alphas)
    below = np.flatnonzero(defined & (alphas < threshold))
    below = below[np.argsort(alphas[below], kind="stable")]
    external = dict(Query.objects.filter(pk__in=[int(pk) for pk in query_pks[below]]).values_list("pk", "external_id"))
    entries = [{"query_id": int(query_pks[i]), "external_id": external.get(int(query_pks[i]), ""),
                "alpha_ordinal": float(alphas[i]), "n_items": int(items[i]), "n_judgments": int(judgments[i])}
               for i in below]
    counts = {"judged": int(len(query_pks)), "with_alpha": int(defined.sum()), "below_threshold": int(len(below)),
              "threshold": threshold,
              "median_alpha": float(np.median(alphas[defined])) if defined.any() else None}
    return entries, counts
