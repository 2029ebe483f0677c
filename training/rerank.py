"""Serving: score documents for a query with a collection's reranker.

What serves: the collection's promoted model, whatever its kind (training.rankers: cross-encoder,
bi-encoder, fusion with BM25). Before any model is promoted, the base model used zero-shot serves
when it ranks the collection's judged queries better than BM25 (training.standing), else BM25 over
the given documents -- never a model worse than both.

Models are loaded once per process and kept in a small cache keyed by path (and the version's id),
so a promotion is picked up on the next request without a restart, and this collection's previous
model is dropped.
"""
from __future__ import annotations

import threading

import numpy as np
from django.conf import settings
from django.utils.translation import gettext, gettext_noop

from .rankers import list_bm25, load_ranker
from .registry import promoted_version

MAX_DOCUMENTS = 1000
MAX_LENGTH = 256

_lock = threading.Lock()
_loaded: dict[tuple, tuple] = {}


class NoPromotedModel(LookupError):
    """Nothing can rerank: no model is promoted and no base model is configured."""


def ranker_at(path, *, key: tuple, owner) -> object:
    with _lock:
        if key not in _loaded:
            # Only what serves now stays in memory: drop this owner's earlier models.
            for stale in [k for k in _loaded if _loaded[k][1] == owner]:
                del _loaded[stale]
            _loaded[key] = (load_ranker(path, max_length=MAX_LENGTH), owner)
        return _loaded[key][0]


def model_for(version):
    return ranker_at(version.path, key=(version.pk, version.path), owner=version.collection_id)


def serving(collection=None) -> dict:
    """What reranks for the collection now: {"kind", "ranker" (None for BM25), "model": description}."""
    version = promoted_version(collection=collection)
    if version is not None:
        ranker = model_for(version)
        return {"ranker": ranker, "model": {"version": version.pk, "collection": version.collection.slug,
                                            "kind": ranker.kind, "source": "promoted", "dev": _dev_record(version)}}
    if collection is None or not settings.BASE_MODEL_DIR:
        if collection is None:
            raise NoPromotedModel(gettext("no reranker is promoted for any collection and no base model is set: "
                                          "train one first"))
        raise NoPromotedModel(gettext("no reranker is promoted for collection %(collection)s and no base model is "
                                      "set: train one first") % {"collection": collection.slug})
    from .standing import zero_shot_standing

    def base_ranker():
        return ranker_at(settings.BASE_MODEL_DIR, key=("base", str(settings.BASE_MODEL_DIR)), owner="base")

    standing = zero_shot_standing(collection, base_ranker)
    described = {"version": None, "collection": collection.slug, "source": "before any run",
                 "standing": standing}
    if standing["serves"] == "zero-shot base":
        ranker = base_ranker()
        return {"ranker": ranker, "model": {**described, "kind": ranker.kind}}
    return {"ranker": None, "model": {**described, "kind": "bm25"}}


def _dev_record(version) -> dict:
    """What the promoted model's run measured on its dev queries, for the warnings below."""
    metrics = (version.run.metrics or {}) if version.run_id else {}
    winner = metrics.get("winner")
    row = next((c for c in metrics.get("candidates") or [] if c.get("name") == winner), None) or metrics.get("new") or {}
    bm25 = (metrics.get("references") or {}).get("bm25") or metrics.get("bm25") or {}
    decision = metrics.get("decision") or {}
    return {"ndcg@10": row.get("ndcg@10"), "bm25_ndcg@10": bm25.get("ndcg@10"), "queries": metrics.get("dev_queries"),
            "override_reason": decision.get("override_reason")}


# Scores closer than this (relative to their size) give an order that is close to arbitrary.
FLAT_SCORES = 1e-6


# The warnings, as msgids: the API says them in English (its clients match on them), the search
# preview in the viewer's language.
_BELOW_BM25 = gettext_noop("the serving model ranked below BM25 on its run's dev queries (NDCG@10 %(ours)s vs "
                           "%(bm25)s on %(n)s queries); it was promoted")
_BELOW_BM25_OVERRIDDEN = gettext_noop("the serving model ranked below BM25 on its run's dev queries (NDCG@10 "
                                      "%(ours)s vs %(bm25)s on %(n)s queries); it was promoted by staff override "
                                      "(%(reason)s)")
_FLAT = gettext_noop("the model gives these %(n)s documents practically the same score (spread %(spread)s): "
                     "their order says nothing")


def serving_warnings(model: dict, scores) -> list[str]:
    """What a person looking at a reranked list should know: the serving model ranked below BM25 on
    its own dev queries (an override can promote such a model), or it scores this list flat. In
    English, as the rerank API answers."""
    return [msgid % figures for msgid, figures in _warnings(model, scores)]


def shown_warnings(model: dict, scores) -> list[str]:
    """``serving_warnings`` in the viewer's language (the search preview)."""
    return [gettext(msgid) % figures for msgid, figures in _warnings(model, scores)]


def _warnings(model: dict, scores) -> list[tuple[str, dict]]:
    warnings = []
    dev = model.get("dev") or {}
    ours, bm25 = dev.get("ndcg@10"), dev.get("bm25_ndcg@10")
    if ours is not None and bm25 is not None and ours < bm25:
        figures = {"ours": f"{ours:.4f}", "bm25": f"{bm25:.4f}", "n": dev.get("queries") or "?"}
        if dev.get("override_reason"):
            warnings.append((_BELOW_BM25_OVERRIDDEN, {**figures, "reason": dev["override_reason"]}))
        else:
            warnings.append((_BELOW_BM25, figures))
    values = np.asarray(scores, dtype=np.float64)
    if model.get("kind") != "bm25" and len(values) > 1 and \
            np.ptp(values) <= FLAT_SCORES * max(1.0, float(np.abs(values).max())):
        warnings.append((_FLAT, {"n": len(values), "spread": f"{np.ptp(values):.2g}"}))
    return warnings


def rerank(*, query: str, documents: list[str], top_k: int | None = None, collection=None) -> dict:
    chosen = serving(collection)
    ranker = chosen["ranker"]
    if ranker is None:
        scores = list_bm25(query, documents, method=getattr(collection, "tokenizer", "auto"))
    else:
        scores = ranker.score(query, documents)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[: top_k or len(documents)]
    return {
        "model": chosen["model"],
        "warnings": serving_warnings(chosen["model"], scores),
        "scores": [float(s) for s in scores],
        "results": [{"index": int(i), "score": float(scores[i])} for i in order],
    }


def warm(limit: int = 5) -> list[str]:
    """Load what serves for the ``limit`` collections judged most recently (and compute their
    before-any-run standing), so the first rerank request or search preview after a start does not
    wait for it (10 s on 2 CPU cores for the demo). Returns the slugs warmed; a collection that
    cannot be served is skipped."""
    from django.db.models import Max

    from annotate.models import Collection

    warmed = []
    recent = (Collection.objects.annotate(last=Max("judgments__updated_at")).filter(last__isnull=False)
              .order_by("-last")[:limit])
    for collection in recent:
        try:
            serving(collection)
        except NoPromotedModel:
            continue
        warmed.append(collection.slug)
    return warmed


def warm_in_background(delay_s: float = 1.0) -> threading.Thread:
    """``warm`` on a daemon thread (the web process starts answering meanwhile)."""
    import logging
    import time

    def run():
        time.sleep(delay_s)
        try:
            logging.getLogger(__name__).info("reranker warmed for %s", warm() or "no collection")
        except Exception:  # a warm-up must never take the web process down
            logging.getLogger(__name__).exception("reranker warm-up failed")
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=run, name="warm-reranker", daemon=True)
    thread.start()
    return thread


def clear_cache() -> None:
    with _lock:
        _loaded.clear()
    from .standing import clear_standing

    clear_standing()
