"""Before any run: does the base model used zero-shot rank a collection's judged queries better
than BM25? The rerank service serves it only then (a team must never get a reranker worse than
what it had), else BM25.

Both are scored on the same lists: each judged query's graded candidates, the grade being the
mean of its standing grades (people's and imported labels alike), BM25 over the list's own
documents as the fusion does. At most ``MAX_QUERIES`` queries (the lowest ids) of at most
``MAX_CANDIDATES`` graded candidates keep the first request of a large collection short. The
answer is cached per process and recomputed once the collection's grades have grown by
``RECOMPUTE_AFTER`` (or a tenth, whichever is more) since it was computed: during active judging a
rerank request does not pay for a new standing after every grade. ``warm`` computes it (and loads
the model) in the background when the web process starts.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from django.conf import settings
from django.db.models import Avg

from annotate.models import Judgment

from .data import QueryGroup, groups_from_rows
from .evaluation import metrics_for
from .rankers import Ranker, list_bm25

MAX_QUERIES = 50
# Graded candidates per query (the lowest document ids): the first rerank request of a collection
# computes the standing, so its cost is bounded (50 x 30 texts: seconds on 2 CPU cores).
MAX_CANDIDATES = 30

RECOMPUTE_AFTER = 20

_lock = threading.Lock()
_cache: dict[tuple, tuple[int, dict]] = {}  # (collection, base model) -> (grades counted, answer)


def zero_shot_standing(collection, base_ranker: Callable[[], Ranker]) -> dict:
    """{"serves": "zero-shot base" | "bm25", "queries", "zero_shot_ndcg@10", "bm25_ndcg@10"};
    ``base_ranker()`` gives the base model (the rerank service's cached one: no second copy)."""
    n = Judgment.objects.grades().filter(collection=collection).count()
    key = (collection.pk, str(settings.BASE_MODEL_DIR))
    with _lock:
        counted, answer = _cache.get(key, (None, None))
    if counted is not None and 0 <= n - counted < max(RECOMPUTE_AFTER, counted // 10):
        return answer
    answer = compare_with_bm25(judged_groups(collection), base_ranker, tokenizer=collection.tokenizer)
    with _lock:
        _cache[key] = (n, answer)
    return answer


def compare_with_bm25(groups, base_ranker: Callable[[], Ranker], *, tokenizer: str = "auto") -> dict:
    """The standing on the given graded lists (BM25 over each list's own documents)."""
    answer = {"serves": "bm25", "queries": len(groups), "zero_shot_ndcg@10": None, "bm25_ndcg@10": None}
    if groups:
        lists = [(group.query, group.docs) for group in groups]
        base = base_ranker().score_lists(lists)
        bm25 = [list_bm25(query, docs, method=tokenizer) for query, docs in lists]
        answer["zero_shot_ndcg@10"] = metrics_for(groups, base)["ndcg@10"]
        answer["bm25_ndcg@10"] = metrics_for(groups, bm25)["ndcg@10"]
        if (answer["zero_shot_ndcg@10"] or 0.0) > (answer["bm25_ndcg@10"] or 0.0):
            answer["serves"] = "zero-shot base"
    return answer


def judged_groups(collection) -> list[QueryGroup]:
    """Each judged query (at most MAX_QUERIES) with its graded candidates and their mean grade; a
    query needs two candidates and one grade above 0 to rank anything."""
    rows = (Judgment.objects.grades().filter(collection=collection)
            .values_list("candidate__query_id", "candidate__query__text", "candidate__document_id",
                         "candidate__document__title", "candidate__document__text")
            .annotate(grade=Avg("grade")).order_by("candidate__query_id", "candidate__document_id"))
    groups = groups_from_rows(rows.iterator(chunk_size=2000), max_queries=MAX_QUERIES, max_candidates=MAX_CANDIDATES)
    return [group for group in groups if max(group.labels) > 0]


def clear_standing() -> None:
    with _lock:
        _cache.clear()
