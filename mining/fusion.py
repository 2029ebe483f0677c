"""Reciprocal rank fusion of several rankings (rescoring with the promoted reranker: mining/rescoring.py).

RRF (Cormack, Clarke & Büttcher, SIGIR 2009): score(d) = sum over sources s of
weight_s / (k + rank_s(d)), ranks starting at 1, a source that did not retrieve d adding nothing.
It needs no score calibration, so BM25 scores, cosines and an imported run's scores combine
without normalisation; k = 60 is the paper's value. Weights let a collection trust one source
more (mining_settings "fusion": {"k": 60, "weights": {"bm25": 1, "dense": 1, "run:*": 0.5}}).
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

DEFAULT_K = 60


def source_weight(weights: Mapping[str, float] | None, source: str) -> float:
    """A source's weight: its own entry, else a ``prefix:*`` entry (``run:*``), else 1."""
    if not weights:
        return 1.0
    if source in weights:
        return float(weights[source])
    if ":" in source:
        wildcard = source.split(":", 1)[0] + ":*"
        if wildcard in weights:
            return float(weights[wildcard])
    return 1.0


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Hashable]],
    *,
    k: float = DEFAULT_K,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[Hashable, float]]:
    """Fuse rankings (source -> documents best first) into [(document, fused score)], best first.

    Ties in fused score are broken by the best single rank the document reached, then by the
    order of the sources given, so the result is deterministic.
    """
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    fused: dict[Hashable, float] = {}
    best: dict[Hashable, tuple[int, int]] = {}
    for source_index, (source, ranking) in enumerate(rankings.items()):
        weight = source_weight(weights, source)
        if weight < 0:
            raise ValueError(f"fusion weight of {source!r} must be >= 0, got {weight}")
        for position, document in enumerate(ranking):
            rank = position + 1
            fused[document] = fused.get(document, 0.0) + weight / (k + rank)
            best[document] = min(best.get(document, (rank, source_index)), (rank, source_index))
    return sorted(fused.items(), key=lambda item: (-item[1], best[item[0]]))
