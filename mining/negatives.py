"""Hard-negative selection for one query, with the false-negative guards the field uses.

Input: the query's retrieved pool, best first, each document with the score the guards compare
(the retriever's score; the reranker's once one is promoted), the scores of the query's known
positives, and what must never be offered (already judged pairs). Output: the negatives to offer.

Guards, in the order applied (after sentence-transformers' ``mine_hard_negatives`` and
NV-Retriever's positive-aware mining, Moreira et al. 2024):

- ``range_min``: skip the top ``range_min`` ranks (the very top is where unlabelled positives
  hide); ``range_max``: look no deeper than this rank (the pool depth);
- ``max_score``: drop documents scoring above it;
- ``margin`` (relative) and ``abs_margin``: compared with the query's *lowest* known positive
  score ``pos``, drop a document when ``neg > pos - |pos| * margin`` or ``neg > pos - abs_margin``.
  ``|pos|`` keeps the relative margin below the positive when scores are negative (a
  cross-encoder's logits): pos = -2, margin = 0.1 puts the bar at -2.2, not -1.8;
- ``dedup``: drop near-duplicates of a positive (similarity to any positive >= the threshold,
  e.g. Jaccard of token sets), which are usually positives themselves;
- ``strategy``: ``top`` keeps the best survivors, ``random`` a seeded sample of them (the seed
  and the query id decide it, so a rerun picks the same); ``count`` is how many.

Margins and dedup need a known positive; a query without one is guarded by the ranks and
``max_score`` only.

The false-negative lane: what ``range_min``, ``max_score``, a margin or ``dedup`` drops is a likely
positive — the most informative pairs for people to settle, and the only way to know whether a
guard's threshold is right. ``lane`` of them per query (a seeded sample, like ``random``) are
offered beside the negatives, each tagged with the first guard that dropped it; annotators judge
them blind, staff see per guard how many turned out relevant (annotate/judging/false_negatives.py).

Pure functions: no database, so tests give hand-made scores.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields

from django.utils.translation import gettext as _

STRATEGIES = ("top", "random")
# The guards that drop a document as a likely positive, in the order they are applied.
GUARDS = ("range_min", "max_score", "margin", "dedup")


@dataclass(frozen=True)
class NegativeSettings:
    count: int = 10
    range_min: int = 0
    range_max: int = 50
    max_score: float | None = None
    margin: float | None = None
    abs_margin: float | None = None
    dedup: float | None = None
    strategy: str = "top"
    seed: int = 0
    lane: int = 0  # guard-dropped documents kept per query for people to settle (the false-negative lane)

    def __post_init__(self):
        problems = []
        for name in ("count", "lane"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(_("%(name)s must be an integer >= 0, got %(value)r") % {"name": name, "value": value})
        if not isinstance(self.range_min, int) or self.range_min < 0:
            problems.append(_("range_min must be an integer >= 0, got %(value)r") % {"value": self.range_min})
        if not isinstance(self.range_max, int) or self.range_max < 1:
            problems.append(_("range_max must be an integer >= 1, got %(value)r") % {"value": self.range_max})
        elif isinstance(self.range_min, int) and self.range_min >= self.range_max:
            problems.append(_("range_min (%(range_min)s) must be below range_max (%(range_max)s)") % {
                "range_min": self.range_min, "range_max": self.range_max})
        for name in ("margin", "abs_margin"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or value < 0):
                problems.append(_("%(name)s must be a number >= 0 or null, got %(value)r") % {"name": name, "value": value})
        if self.max_score is not None and not _is_number(self.max_score):
            problems.append(_("max_score must be a number or null, got %(value)r") % {"value": self.max_score})
        if self.dedup is not None and (not _is_number(self.dedup) or not 0 < self.dedup <= 1):
            problems.append(_("dedup must be a similarity in (0, 1] or null, got %(value)r") % {"value": self.dedup})
        if self.strategy not in STRATEGIES:
            problems.append(_("strategy must be one of %(strategies)s, got %(value)r") % {
                "strategies": ", ".join(STRATEGIES), "value": self.strategy})
        if not isinstance(self.seed, int):
            problems.append(_("seed must be an integer, got %(value)r") % {"value": self.seed})
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_dict(cls, raw: Mapping) -> "NegativeSettings":
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown negative setting(s): {', '.join(unknown)}; expected {', '.join(sorted(known))}")
        return cls(**dict(raw))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Scored:
    document: Hashable
    rank: int  # 1-based position in the pool
    score: float
    guard: str | None = None  # in the false-negative lane: the guard that dropped it


@dataclass(frozen=True)
class Selection:
    negatives: list[Scored]  # passed every guard
    lane: list[Scored]  # dropped by a guard as likely positives, tagged, offered for people to settle


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def margin_bar(positive_score: float, settings: NegativeSettings) -> float | None:
    """The highest score a negative may have given the lowest positive's score (None: no bar)."""
    bars = []
    if settings.margin is not None:
        bars.append(positive_score - abs(positive_score) * settings.margin)
    if settings.abs_margin is not None:
        bars.append(positive_score - settings.abs_margin)
    return min(bars) if bars else None


def jaccard(a: Collection, b: Collection) -> float:
    """|a ∩ b| / |a ∪ b| of two token sets (0 for two empty sets)."""
    a, b = set(a), set(b)
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def max_similarity_to_positives(
    documents: Iterable[Hashable], token_sets: Mapping[Hashable, Collection], positives: Iterable[Hashable],
) -> dict[Hashable, float]:
    """For each document, its highest Jaccard similarity to any positive (0 without positives)."""
    positive_sets = [set(token_sets[p]) for p in positives if p in token_sets]
    return {
        document: max((jaccard(token_sets.get(document, ()), p) for p in positive_sets), default=0.0)
        for document in documents
    }


def select_negatives(
    pool: Sequence[Scored],
    *,
    positive_scores: Mapping[Hashable, float],
    settings: NegativeSettings,
    never: Collection[Hashable] = (),
    similarity_to_positive: Mapping[Hashable, float] | None = None,
    query_key: str = "",
) -> list[Scored]:
    """The negatives to offer for one query, in pool order (best rank first); see `select`."""
    return select(pool, positive_scores=positive_scores, settings=settings, never=never,
                  similarity_to_positive=similarity_to_positive, query_key=query_key).negatives


def select(
    pool: Sequence[Scored],
    *,
    positive_scores: Mapping[Hashable, float],
    settings: NegativeSettings,
    never: Collection[Hashable] = (),
    similarity_to_positive: Mapping[Hashable, float] | None = None,
    query_key: str = "",
) -> Selection:
    """The negatives and the false-negative lane to offer for one query, each in pool order.

    `pool` is the retrieved pool, best first; `positive_scores` maps each known positive to its
    guard score (a positive absent from the pool still needs a score for the margins);
    `never` holds documents that may not be offered (judged pairs); `similarity_to_positive` a
    document's highest similarity to any positive (for `dedup`).
    """
    lowest_positive = min(positive_scores.values()) if positive_scores else None
    bar = margin_bar(lowest_positive, settings) if lowest_positive is not None else None
    similarity = similarity_to_positive if positive_scores else None
    survivors, dropped = [], []
    for scored in pool:
        if scored.rank > settings.range_max or scored.document in positive_scores or scored.document in never:
            continue
        guard = _dropping_guard(scored, settings=settings, bar=bar, similarity=similarity)
        if guard is None:
            survivors.append(scored)
        else:
            dropped.append(Scored(scored.document, scored.rank, scored.score, guard))
    return Selection(
        negatives=_pick(survivors, settings.count, strategy=settings.strategy, seed=settings.seed, key=query_key),
        lane=_pick(dropped, settings.lane, strategy="random", seed=settings.seed, key=f"lane:{query_key}"),
    )


def _dropping_guard(scored: Scored, *, settings: NegativeSettings, bar: float | None,
                    similarity: Mapping[Hashable, float] | None) -> str | None:
    """The first guard (in GUARDS order) that drops this document as a likely positive, or None."""
    if scored.rank <= settings.range_min:
        return "range_min"
    if settings.max_score is not None and scored.score > settings.max_score:
        return "max_score"
    if bar is not None and scored.score > bar:
        return "margin"
    if settings.dedup is not None and similarity is not None and similarity.get(scored.document, 0.0) >= settings.dedup:
        return "dedup"
    return None


def _pick(scored: list[Scored], count: int, *, strategy: str, seed: int, key: str) -> list[Scored]:
    """`count` of these, in pool order: the best ranked (`top`) or a seeded sample (`random`)."""
    if strategy == "random" and len(scored) > count:
        chosen = set(_rng(seed, key).sample(range(len(scored)), count))
        return [s for i, s in enumerate(scored) if i in chosen]
    return scored[:count]


def _rng(seed: int, query_key: str) -> random.Random:
    # Seeded per query (not one stream across queries) so the sample for a query does not depend
    # on which other queries share its chunk: a rerun or a redelivered chunk picks the same.
    digest = hashlib.sha256(f"{seed}:{query_key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
