"""One mining pass over a batch of queries: retrieve, fuse, score for the guards, pick negatives.

Independent of the database: documents are whatever keys the indexes hold (Document pks in the
app, positions in bench/mining_quality.py), queries come as `QueryInput`s. mining/services.py
reads those from the database and writes the outcome back.

Which score the guards compare: BM25's for `bm25`; the bi-encoder's cosine for `dense` and for
`hybrid` (a fused RRF score is a rank statistic: a positive outside the pool would get 0, and
margins in it mean nothing); the promoted reranker's once one exists, which then also orders
the pool (dynamic hard negatives). Positives are scored by the same scorer even when they were
not retrieved, so the margin always has its reference.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.utils.translation import gettext as _

from . import dense as dense_retrieval
from .fusion import DEFAULT_K, reciprocal_rank_fusion
from .negatives import (
    NegativeSettings,
    Scored,
    max_similarity_to_positives,
    select,
)
from .text.tokenize import tokenize, tokenize_many

METHODS = ("bm25", "dense", "hybrid")
# Keys a job's params (or the collection's mining_settings) may set, beside depth and negatives.
NEGATIVE_KEYS = ("range_min", "max_score", "margin", "abs_margin", "dedup", "strategy", "seed", "lane")
OTHER_KEYS = ("fusion_k", "weights", "positive_grade", "chunk_size", "model_dir")
PARAM_KEYS = NEGATIVE_KEYS + OTHER_KEYS
# Guard defaults measured with bench/mining_quality.py (see its docstring for the figures). The
# false-negative lane (mining/negatives.py) offers 2 guard-dropped documents per query beside the
# negatives: enough over a collection to measure each guard, a small share of the judging.
DEFAULT_GUARDS = {"range_min": 0, "margin": 0.05, "dedup": 0.8, "lane": 2}
DEFAULT_DEPTH = 50
DEFAULT_NEGATIVES = 10
DEFAULT_CHUNK_SIZE = 50


class MiningParamsError(ValueError):
    """A mining parameter that cannot be used; the message names it and why."""


@dataclass(frozen=True)
class MiningSettings:
    method: str
    negatives: NegativeSettings  # its range_max is the pool depth
    fusion_k: float = DEFAULT_K
    weights: Mapping[str, float] = field(default_factory=dict)
    positive_grade: int = 2
    chunk_size: int = DEFAULT_CHUNK_SIZE
    model_dir: str | None = None

    @property
    def depth(self) -> int:
        return self.negatives.range_max

    def as_params(self) -> dict:
        negatives = self.negatives.as_dict()
        return {
            "depth": negatives.pop("range_max"), "negatives": negatives.pop("count"), **negatives,
            "fusion_k": self.fusion_k, "weights": dict(self.weights), "positive_grade": self.positive_grade,
            "chunk_size": self.chunk_size, "model_dir": self.model_dir,
        }


def resolve_settings(*, method: str, depth: int | None = None, negatives: int | None = None,
                     params: Mapping | None = None, defaults: Mapping | None = None) -> MiningSettings:
    """Settings from explicit arguments over `params` over `defaults` (a collection's mining_settings)."""
    if method not in METHODS:
        raise MiningParamsError(_("method must be one of %(methods)s, got %(method)r") % {
            "methods": ", ".join(METHODS), "method": method})
    params = dict(params or {})
    unknown = sorted(set(params) - set(PARAM_KEYS) - {"depth", "negatives"})
    if unknown:
        raise MiningParamsError(_("unknown mining parameter(s): %(unknown)s; expected depth, negatives, %(keys)s") % {
            "unknown": ", ".join(unknown), "keys": ", ".join(PARAM_KEYS)})
    merged = {**DEFAULT_GUARDS, **{k: v for k, v in (defaults or {}).items() if k in PARAM_KEYS + ("depth", "negatives")},
              **params}
    if depth is not None:
        merged["depth"] = depth
    if negatives is not None:
        merged["negatives"] = negatives
    depth_value = merged.pop("depth", DEFAULT_DEPTH)
    count = merged.pop("negatives", DEFAULT_NEGATIVES)
    for name, value in (("depth", depth_value), ("negatives", count)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise MiningParamsError(_("%(name)s must be an integer, got %(value)r") % {"name": name, "value": value})
    if depth_value < 1 or depth_value > 10_000:
        raise MiningParamsError(_("depth must be between 1 and 10000, got %(depth)s") % {"depth": depth_value})
    if count < 0:
        raise MiningParamsError(_("negatives must be >= 0, got %(count)s") % {"count": count})
    try:
        negative_settings = NegativeSettings(count=count, range_max=depth_value,
                                             **{k: merged[k] for k in NEGATIVE_KEYS if k in merged})
    except (TypeError, ValueError) as exc:
        raise MiningParamsError(str(exc)) from None
    fusion_k = merged.get("fusion_k", DEFAULT_K)
    if not isinstance(fusion_k, (int, float)) or isinstance(fusion_k, bool) or fusion_k < 0:
        raise MiningParamsError(_("fusion_k must be a number >= 0, got %(value)r") % {"value": fusion_k})
    weights = merged.get("weights") or {}
    if not isinstance(weights, Mapping) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in weights.values()
    ):
        raise MiningParamsError(_("weights must map source names to numbers >= 0, got %(value)r") % {"value": weights})
    positive_grade = merged.get("positive_grade", 2)
    if positive_grade not in (1, 2, 3):
        raise MiningParamsError(_("positive_grade must be 1, 2 or 3, got %(value)r") % {"value": positive_grade})
    chunk_size = merged.get("chunk_size", DEFAULT_CHUNK_SIZE)
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or not 1 <= chunk_size <= 10_000:
        raise MiningParamsError(_("chunk_size must be an integer between 1 and 10000, got %(value)r") % {
            "value": chunk_size})
    model_dir = merged.get("model_dir")
    if model_dir is not None and not isinstance(model_dir, str):
        raise MiningParamsError(_("model_dir must be a path, got %(value)r") % {"value": model_dir})
    return MiningSettings(method=method, negatives=negative_settings, fusion_k=float(fusion_k),
                          weights=dict(weights), positive_grade=positive_grade, chunk_size=chunk_size,
                          model_dir=model_dir)


@dataclass
class Resources:
    """What retrieval reads: the BM25 index and/or the bi-encoder with the corpus embeddings."""

    bm25: object | None = None  # index_store.CollectionIndex (bm25, doc_ids, tokenizer)
    encoder: object | None = None  # dense.BiEncoder
    embeddings: object | None = None  # dense.CorpusEmbeddings (vectors, doc_ids)
    warnings: list[str] = field(default_factory=list)


@dataclass
class QueryInput:
    key: str  # stable id (seeds the random strategy)
    text: str
    positives: set = field(default_factory=set)  # documents judged >= positive_grade
    never: set = field(default_factory=set)  # documents that may not be offered (judged pairs)
    runs: dict[str, list] = field(default_factory=dict)  # "run:<tag>" -> documents best first


@dataclass
class QueryMining:
    key: str
    pool: list[Scored]  # the final ranking, with the guard scores
    sources: dict[Hashable, dict[str, dict]]  # document -> {source: {"rank", "score"}}
    negatives: list[Scored]
    lane: list[Scored] = field(default_factory=list)  # guard-dropped likely positives, tagged with the guard


def _present(doc_ids: np.ndarray, documents: Sequence) -> tuple[list, np.ndarray]:
    """The documents found in an ascending id array, and their positions there.

    A document added after the index was built (a positive imported mid-job) is left out.
    """
    if not len(documents) or not len(doc_ids):
        return [], np.zeros(0, dtype=np.int64)
    wanted = np.asarray(documents, dtype=doc_ids.dtype)
    positions = np.clip(np.searchsorted(doc_ids, wanted), 0, len(doc_ids) - 1)
    found = np.asarray(doc_ids[positions]) == wanted
    return [d for d, ok in zip(documents, found) if ok], positions[found]


def mine_queries(
    resources: Resources,
    settings: MiningSettings,
    queries: Sequence[QueryInput],
    *,
    tokenizer: str = "auto",
    texts_of: Callable[[Iterable], Mapping[Hashable, str]] | None = None,
    rescorer: Callable[[str, list[str]], list[float] | None] | None = None,
) -> list[QueryMining]:
    """Mine a batch of queries; batched retrieval, then per-query fusion, guards and selection."""
    if not queries:
        return []
    texts = [query.text for query in queries]
    depth = settings.depth
    rankings: list[dict[str, list[tuple[Hashable, float]]]] = [{} for _ in queries]
    query_tokens = None
    query_vectors = None
    if settings.method in ("bm25", "hybrid"):
        index = resources.bm25
        query_tokens = tokenize_many(texts, method=index.tokenizer)
        top, scores = index.bm25.top_k(query_tokens, depth)
        for row, ranking in enumerate(rankings):
            matched = scores[row] > 0  # the index pads with unmatched zero-score documents
            ranking["bm25"] = list(zip(index.doc_ids[top[row][matched]].tolist(), scores[row][matched].tolist()))
    if settings.method in ("dense", "hybrid"):
        query_vectors = resources.encoder.encode(texts)
        top, scores = dense_retrieval.top_k(query_vectors, resources.embeddings.vectors, depth)
        for row, ranking in enumerate(rankings):
            ranking["dense"] = list(zip(resources.embeddings.doc_ids[top[row]].tolist(), scores[row].tolist()))

    outcomes = []
    for row, query in enumerate(queries):
        pool_docs, sources = _pool(settings, rankings[row], query.runs)
        positives = sorted(query.positives, key=str)
        guard_docs = list(dict.fromkeys(pool_docs + positives))
        guard = None
        if rescorer is not None and texts_of is not None and guard_docs:
            doc_texts = texts_of(guard_docs)
            rescored = rescorer(query.text, [doc_texts[d] for d in guard_docs])
            if rescored is not None:
                guard = dict(zip(guard_docs, rescored))
                pool_docs = sorted(pool_docs, key=lambda d: -guard[d])  # stable: ties keep the fused order
                for rank, document in enumerate(pool_docs, start=1):
                    sources[document]["rerank"] = {"rank": rank, "score": float(guard[document])}
        if guard is None:
            guard = _guard_scores(resources, settings.method, guard_docs,
                                  None if query_tokens is None else query_tokens[row],
                                  None if query_vectors is None else query_vectors[row])
        pool = [Scored(document, rank, guard[document]) for rank, document in enumerate(pool_docs, start=1)]
        similarity = None
        if settings.negatives.dedup is not None and positives and texts_of is not None:
            doc_texts = texts_of(guard_docs)
            token_sets = {d: set(tokenize(doc_texts[d], method=tokenizer)) for d in guard_docs}
            similarity = max_similarity_to_positives(pool_docs, token_sets, positives)
        selection = select(
            pool, positive_scores={p: guard[p] for p in positives if p in guard}, settings=settings.negatives,
            never=query.never, similarity_to_positive=similarity, query_key=query.key,
        )
        outcomes.append(QueryMining(key=query.key, pool=pool, sources=sources, negatives=selection.negatives,
                                    lane=selection.lane))
    return outcomes


def _pool(settings: MiningSettings, rankings: dict, runs: dict) -> tuple[list, dict]:
    """The query's pool (documents best first) and each document's sources with rank and score."""
    sources: dict[Hashable, dict[str, dict]] = {}
    for source, ranking in rankings.items():
        for rank, (document, score) in enumerate(ranking, start=1):
            sources.setdefault(document, {})[source] = {"rank": rank, "score": float(score)}
    if settings.method != "hybrid":
        (ranking,) = rankings.values()
        return [document for document, _ in ranking], sources
    fused = reciprocal_rank_fusion(
        {**{source: [d for d, _ in ranking] for source, ranking in rankings.items()}, **runs},
        k=settings.fusion_k, weights=settings.weights,
    )[: settings.depth]
    for rank, (document, score) in enumerate(fused, start=1):
        sources.setdefault(document, {})["hybrid"] = {"rank": rank, "score": float(score)}
    kept = {document for document, _ in fused}
    return [document for document, _ in fused], {d: s for d, s in sources.items() if d in kept}


def _guard_scores(resources: Resources, method: str, documents: list, tokens, vector) -> dict:
    if method == "bm25":
        index = resources.bm25
        documents, positions = _present(index.doc_ids, documents)
        if not documents:
            return {}
        return dict(zip(documents, index.bm25.scores(tokens)[positions].tolist()))
    documents, positions = _present(resources.embeddings.doc_ids, documents)
    if not documents:
        return {}
    rows = np.asarray(resources.embeddings.vectors[positions], dtype=np.float32)
    return dict(zip(documents, (rows @ np.asarray(vector, dtype=np.float32)).tolist()))


COLLECTION_KEYS = ("premine_method", "ready_per_annotator", "bm25")


def check_collection_settings(settings) -> dict:
    """A collection's ``mining_settings`` checked as the jobs and pre-mining read them: the job keys
    (depth, negatives, PARAM_KEYS) through resolve_settings, plus ``premine_method`` (a METHOD),
    ``ready_per_annotator`` (1..1000) and ``bm25`` ({"k1", "b", "epsilon"} numbers). Returns them;
    MiningParamsError names the first bad one."""
    if not isinstance(settings, Mapping):
        raise MiningParamsError(_("mining settings must be a JSON object, got %(type)s") % {
            "type": type(settings).__name__})
    unknown = sorted(set(settings) - set(PARAM_KEYS) - {"depth", "negatives"} - set(COLLECTION_KEYS))
    if unknown:
        raise MiningParamsError(_("unknown mining setting(s): %(unknown)s; expected depth, negatives, %(keys)s") % {
            "unknown": ", ".join(unknown), "keys": ", ".join(PARAM_KEYS + COLLECTION_KEYS)})
    method = settings.get("premine_method", "bm25")
    resolve_settings(method=method, params={k: v for k, v in settings.items() if k not in COLLECTION_KEYS})
    ready = settings.get("ready_per_annotator", 5)
    if not isinstance(ready, int) or isinstance(ready, bool) or not 1 <= ready <= 1000:
        raise MiningParamsError(_("ready_per_annotator must be an integer between 1 and 1000, got %(value)r") % {
            "value": ready})
    bm25 = settings.get("bm25", {})
    if not isinstance(bm25, Mapping) or set(bm25) - {"k1", "b", "epsilon"} or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in bm25.values()):
        raise MiningParamsError(_('bm25 must be {"k1", "b", "epsilon"} with numbers >= 0, got %(value)r') % {
            "value": bm25})
    if "b" in bm25 and bm25["b"] > 1:
        raise MiningParamsError(_("bm25.b must be between 0 and 1, got %(value)r") % {"value": bm25["b"]})
    return dict(settings)
