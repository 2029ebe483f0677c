"""Ranking metrics for reranker evaluation: NDCG@k, MRR@k, Recall@k and MAP.

Definitions (DESIGN.md, "Metrics and benchmarks"); each equals trec_eval's measure of the same
name (``ndcg_cut``, ``recip_rank``, ``recall``, ``map``) and ranx's metric, per query:

- **NDCG@k**: gain = the grade (linear, not ``2**grade - 1``), discount ``1 / log2(rank + 1)``.
  The ideal ranking sorts *every judged document of the query* by grade -- also those the run
  did not retrieve -- and is cut at k too. Grades below the relevance threshold still earn gain.
- **MRR@k**: ``1 / rank`` of the first candidate graded >= ``relevance_threshold`` within the
  top k, 0 if none is.
- **Recall@k**: relevant candidates in the top k / relevant judged documents of the query.
- **MAP**: mean over the query's relevant judged documents of the precision at the rank where
  each was retrieved (0 for one never retrieved); the whole ranking counts, no cut-off.

"Relevant" means grade >= ``relevance_threshold`` (default 2, the TREC Deep Learning
convention; trec_eval's ``-l 2``, ranx's ``-l2`` suffix).

Queries left out of the mean (their per-query value is NaN in the arrays, None in ``evaluate``):
- NDCG: a query whose ideal DCG is 0, i.e. none of its judged documents has a grade above 0.
- MRR, Recall, MAP: a query with no judged document graded >= ``relevance_threshold``.
trec_eval and ranx instead average these queries in as 0; compare per-query values, or means
over the kept queries, with them.

Ties: candidates are ranked by score, highest first, with a stable sort, so candidates with
equal scores keep their input order (the order of the score matrix's columns, or the run dict's
insertion order). Scoring every candidate the same therefore evaluates the input order as is.
trec_eval breaks ties by docno, descending, and ranx by its own sort, so the three agree only on
untied scores.

The array-level functions take ``[n_queries, n_candidates]`` matrices, padded to the longest
query with ``mask`` (True = a real candidate), and are what the trainer's dev loop calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

DEFAULT_K = 10
DEFAULT_RELEVANCE_THRESHOLD = 2


# --- array level -------------------------------------------------------------------------------


def ndcg_at_k(scores, grades, mask=None, *, k: int = DEFAULT_K, ideal_grades=None) -> np.ndarray:
    """Per-query NDCG@k, NaN where the ideal DCG is 0.

    ``ideal_grades`` ([n_queries, any width], zero-padded) holds the grades of all judged
    documents of each query; by default the candidates' own grades.
    """
    scores, grades, mask = _check_matrices(scores, grades, mask)
    _check_k(k)
    ranked = _ranked_grades(scores, grades, mask)
    ideal = _check_ideal(ideal_grades, grades, mask)
    dcg = _dcg(ranked, k)
    idcg = _dcg(-np.sort(-ideal, axis=1), k)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(idcg > 0, dcg / idcg, np.nan)


def reciprocal_rank_at_k(
    scores,
    grades,
    mask=None,
    *,
    k: int = DEFAULT_K,
    relevance_threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
    ideal_grades=None,
) -> np.ndarray:
    """Per-query reciprocal rank of the first relevant candidate in the top k (0 if none there);
    NaN for a query with no relevant judged document."""
    relevant, n_relevant = _relevance(scores, grades, mask, relevance_threshold, ideal_grades)
    _check_k(k)
    top = relevant[:, :k]
    first = np.argmax(top, axis=1)
    rr = np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)
    return np.where(n_relevant > 0, rr, np.nan)


def recall_at_k(
    scores,
    grades,
    mask=None,
    *,
    k: int = DEFAULT_K,
    relevance_threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
    ideal_grades=None,
) -> np.ndarray:
    """Per-query share of the relevant judged documents found in the top k; NaN if there are
    none."""
    relevant, n_relevant = _relevance(scores, grades, mask, relevance_threshold, ideal_grades)
    _check_k(k)
    found = relevant[:, :k].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_relevant > 0, found / n_relevant, np.nan)


def average_precision(
    scores,
    grades,
    mask=None,
    *,
    relevance_threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
    ideal_grades=None,
) -> np.ndarray:
    """Per-query average precision over the whole ranking; NaN if there is no relevant document."""
    relevant, n_relevant = _relevance(scores, grades, mask, relevance_threshold, ideal_grades)
    ranks = np.arange(1, relevant.shape[1] + 1)
    precision = np.cumsum(relevant, axis=1) / ranks
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = (precision * relevant).sum(axis=1) / n_relevant
    return np.where(n_relevant > 0, ap, np.nan)


def mean_over_queries(values) -> float | None:
    """Mean of per-query values, leaving out NaN (queries left out); None if all are left out."""
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else None


def rank_order(scores, mask=None) -> np.ndarray:
    """Column indices of each row from best to worst: score descending, ties in input order,
    padding last."""
    scores = np.asarray(scores, dtype=np.float64)
    mask = np.ones(scores.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    position = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    # lexsort's last key is the primary one: real candidates first, then score, then position.
    return np.lexsort((position, -np.where(mask, scores, 0.0), ~mask), axis=1)


# --- dict level -------------------------------------------------------------------------------


def evaluate(
    runs: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, float]],
    *,
    k: int = DEFAULT_K,
    relevance_threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
) -> dict:
    """Score runs ``{qid: {docid: score}}`` against qrels ``{qid: {docid: grade}}``.

    A retrieved document missing from the qrels has grade 0. A query with relevant qrels but
    no run scores 0 on every metric (trec_eval ``-c``, ranx ``make_comparable``); a run's query
    missing from the qrels has nothing relevant and is left out. Returns::

        {"queries": n, "ndcg@10": ..., "mrr@10": ..., "recall@10": ..., "map": ...,
         "ndcg_queries": n_ndcg, "per_query": {qid: {"ndcg@10": ..., ...}}}

    ``queries`` counts the queries MRR, Recall and MAP average over (at least one judged
    document graded >= ``relevance_threshold``); ``ndcg_queries`` those NDCG averages over (ideal
    DCG above 0). A left-out query's value is None.
    """
    _check_k(k)
    _check_threshold(relevance_threshold)
    _check_nested(runs, "runs", "score")
    _check_nested(qrels, "qrels", "grade")
    query_ids = list(runs) + [qid for qid in qrels if qid not in runs]
    if not query_ids:
        raise ValueError("runs and qrels are both empty: nothing to evaluate")

    width = max(1, max((len(runs.get(qid, {})) for qid in query_ids), default=1))
    ideal_width = max(1, max((len(qrels.get(qid, {})) for qid in query_ids), default=1))
    scores = np.zeros((len(query_ids), width))
    grades = np.zeros((len(query_ids), width))
    mask = np.zeros((len(query_ids), width), dtype=bool)
    ideal = np.zeros((len(query_ids), ideal_width))
    for row, qid in enumerate(query_ids):
        run = runs.get(qid, {})
        judged = qrels.get(qid, {})
        scores[row, : len(run)] = list(run.values())
        grades[row, : len(run)] = [judged.get(docid, 0.0) for docid in run]
        mask[row, : len(run)] = True
        ideal[row, : len(judged)] = list(judged.values())

    per_metric = {
        f"ndcg@{k}": ndcg_at_k(scores, grades, mask, k=k, ideal_grades=ideal),
        f"mrr@{k}": reciprocal_rank_at_k(
            scores, grades, mask, k=k, relevance_threshold=relevance_threshold, ideal_grades=ideal
        ),
        f"recall@{k}": recall_at_k(
            scores, grades, mask, k=k, relevance_threshold=relevance_threshold, ideal_grades=ideal
        ),
        "map": average_precision(
            scores, grades, mask, relevance_threshold=relevance_threshold, ideal_grades=ideal
        ),
    }
    queries = int((~np.isnan(per_metric["map"])).sum())
    ndcg_queries = int((~np.isnan(per_metric[f"ndcg@{k}"])).sum())
    if queries == 0 and ndcg_queries == 0:
        raise ValueError(
            f"nothing to evaluate: none of the {len(query_ids)} queries has a judged document "
            "graded above 0"
        )
    result: dict = {"queries": queries}
    result.update({name: mean_over_queries(values) for name, values in per_metric.items()})
    result["ndcg_queries"] = ndcg_queries
    result["per_query"] = {
        qid: {name: _none_if_nan(values[row]) for name, values in per_metric.items()}
        for row, qid in enumerate(query_ids)
    }
    return result


# --- internals --------------------------------------------------------------------------------


def _dcg(ranked_gains: np.ndarray, k: int) -> np.ndarray:
    top = ranked_gains[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    return top @ discounts


def _ranked_grades(scores: np.ndarray, grades: np.ndarray, mask: np.ndarray) -> np.ndarray:
    order = rank_order(scores, mask)
    # Padding sorts last and carries grade 0, so it never earns gain or counts as relevant.
    return np.take_along_axis(np.where(mask, grades, 0.0), order, axis=1)


def _relevance(scores, grades, mask, relevance_threshold, ideal_grades):
    scores, grades, mask = _check_matrices(scores, grades, mask)
    _check_threshold(relevance_threshold)
    ranked = _ranked_grades(scores, grades, mask)
    # Padding has grade 0, below any allowed threshold, so it is never relevant.
    relevant = (ranked >= relevance_threshold).astype(np.float64)
    ideal = _check_ideal(ideal_grades, grades, mask)
    n_relevant = (ideal >= relevance_threshold).sum(axis=1).astype(np.float64)
    return relevant, n_relevant


def _check_matrices(scores, grades, mask):
    scores = np.asarray(scores, dtype=np.float64)
    grades = np.asarray(grades, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(
            f"scores must be a [n_queries, n_candidates] matrix, got shape {scores.shape}"
        )
    if grades.shape != scores.shape:
        raise ValueError(f"grades shape {grades.shape} does not match scores shape {scores.shape}")
    if mask is None:
        mask = np.ones(scores.shape, dtype=bool)
    else:
        mask = np.asarray(mask)
        if mask.shape != scores.shape:
            raise ValueError(f"mask shape {mask.shape} does not match scores shape {scores.shape}")
        if mask.dtype != bool:
            raise ValueError(f"mask must be boolean (True = a real candidate), got {mask.dtype}")
    if np.isnan(scores[mask]).any():
        row, col = np.argwhere(np.isnan(scores) & mask)[0]
        raise ValueError(f"scores[{row}, {col}] is NaN")
    _check_grades(grades[mask], "grades")
    return scores, grades, mask


def _check_ideal(ideal_grades, grades, mask) -> np.ndarray:
    if ideal_grades is None:
        return np.where(mask, grades, 0.0)
    ideal = np.asarray(ideal_grades, dtype=np.float64)
    if ideal.ndim != 2 or ideal.shape[0] != grades.shape[0]:
        raise ValueError(
            f"ideal_grades must be a [{grades.shape[0]}, n_judged] matrix, got shape {ideal.shape}"
        )
    _check_grades(ideal, "ideal_grades")
    return ideal


def _check_grades(values: np.ndarray, name: str) -> None:
    if not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite, found {values[~np.isfinite(values)][0]}")
    if (values < 0).any():
        raise ValueError(f"{name} must be >= 0, found {values[values < 0][0]}")


def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _check_threshold(relevance_threshold) -> None:
    # A threshold of 0 would make every retrieved document relevant, judged or not.
    if not isinstance(relevance_threshold, (int, float, np.number)) or not (
        relevance_threshold > 0 and math.isfinite(relevance_threshold)
    ):
        raise ValueError(
            f"relevance_threshold must be a number above 0, got {relevance_threshold!r}"
        )


def _check_nested(table, name: str, value_name: str) -> None:
    if not isinstance(table, Mapping):
        raise ValueError(
            f"{name} must map query ids to {{doc id: {value_name}}}, got {type(table).__name__}"
        )
    for qid, docs in table.items():
        if not isinstance(docs, Mapping):
            raise ValueError(
                f"{name}[{qid!r}] must map doc ids to {value_name}s, got {type(docs).__name__}"
            )
        for docid, value in docs.items():
            where = f"{name}[{qid!r}][{docid!r}]"
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"{where}: {value_name} {value!r} is not a number")
            if math.isnan(value):
                raise ValueError(f"{where}: {value_name} is NaN")
            if value_name == "grade" and (value < 0 or math.isinf(value)):
                raise ValueError(f"{where}: grade {value!r} must be finite and >= 0")


def _none_if_nan(value) -> float | None:
    return None if np.isnan(value) else float(value)
