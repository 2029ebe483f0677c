"""Before any run: does the base model used zero-shot rank a collection's judged queries better
than BM25? The rerank service serves it only then (a team must never get a reranker worse than
what it had), else BM25.

Both are scored on the same lists: each judged query's graded candidates, the grade being the
mean of its standing grades (people's and imported labels alike), BM25 over the list's own
documents as the fusion does. At most ``MAX_QUERIES`` queries (the lowest ids) of at most
``MAX_CANDIDATES`` graded candidates keep the first request of a large collection short. The answer is cached per process and per state of the
judgments (count and last change), so a new grade is counted at the next request.
"""
from __future__ import annotations

import threading
from collections import defaultdict

import numpy as np
from django.conf import settings
from django.db.models import Avg, Count, Max

from annotate.models import Judgment

from .data import QueryGroup
from .evaluation import metrics_for
from .rankers import list_bm25, load_ranker

MAX_QUERIES = 50
# Graded candidates per query (the lowest document ids): the first rerank request of a collection
# computes the standing, so its cost is bounded (50 x 30 texts: seconds on 2 CPU cores).
MAX_CANDIDATES = 30

_lock = threading.Lock()
_cache: dict[tuple, dict] = {}


def zero_shot_standing(collection) -> dict:
    """{"serves": "zero-shot base" | "bm25", "queries", "zero_shot_ndcg@10", "bm25_ndcg@10"}."""
    grades = Judgment.objects.grades().filter(collection=collection)
    state = grades.aggregate(n=Count("pk"), last=Max("updated_at"))
    key = (collection.pk, state["n"], state["last"], str(settings.BASE_MODEL_DIR))
    with _lock:
        if key in _cache:
            return _cache[key]
    groups = judged_groups(collection)
    answer = {"serves": "bm25", "queries": len(groups), "zero_shot_ndcg@10": None, "bm25_ndcg@10": None}
    if groups:
        lists = [(group.query, group.docs) for group in groups]
        base = load_ranker(settings.BASE_MODEL_DIR).score_lists(lists)
        bm25 = [list_bm25(query, docs, method=collection.tokenizer) for query, docs in lists]
        answer["zero_shot_ndcg@10"] = metrics_for(groups, base)["ndcg@10"]
        answer["bm25_ndcg@10"] = metrics_for(groups, bm25)["ndcg@10"]
        if (answer["zero_shot_ndcg@10"] or 0.0) > (answer["bm25_ndcg@10"] or 0.0):
            answer["serves"] = "zero-shot base"
    with _lock:
        _cache[key] = answer
    return answer


def judged_groups(collection) -> list[QueryGroup]:
    """Each judged query (at most MAX_QUERIES) with its graded candidates and their mean grade; a
    query needs two candidates and one grade above 0 to rank anything."""
    rows = (Judgment.objects.grades().filter(collection=collection)
            .values("candidate__query_id", "candidate__query__text", "candidate__document_id",
                    "candidate__document__title", "candidate__document__text")
            .annotate(grade=Avg("grade")).order_by("candidate__query_id", "candidate__document_id"))
    by_query: dict[int, QueryGroup] = defaultdict(lambda: None)
    groups: list[QueryGroup] = []
    for row in rows.iterator(chunk_size=2000):
        query_id = row["candidate__query_id"]
        group = by_query[query_id]
        if group is None:
            if len(groups) >= MAX_QUERIES:
                break
            group = by_query[query_id] = QueryGroup(query_id=str(query_id), query=row["candidate__query__text"])
            groups.append(group)
        if len(group) >= MAX_CANDIDATES:
            continue
        title, text = row["candidate__document__title"], row["candidate__document__text"]
        group.doc_ids.append(str(row["candidate__document_id"]))
        group.docs.append(f"{title}\n{text}" if title else text)
        group.labels.append(float(row["grade"]))
        group.weights.append(1.0)
    return [g for g in groups if len(g) >= 2 and np.max(g.labels) > 0]


def clear_standing() -> None:
    with _lock:
        _cache.clear()
