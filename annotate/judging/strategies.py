"""Which pairs people judge first: a collection's judging strategy, as a priority per candidate.

Plain Python (no database): assignment stores what `priorities` returns on each candidate
(annotate/judging/priorities.py) and hands out work lowest priority first -- the query whose best
open candidate comes first, then that query's open candidates in priority order, `task_size` at a
time -- and bench/budget.py runs the same functions in its simulation, so the figures that chose
the default are the product's own orders.

The strategies (#17 item 3; bench/budget.py measures each against random order):
- ``fewest-judged``: a whole query at a time, queries with the fewest holders first (the order
  before strategies existed; priorities unused).
- ``pooled``: TREC-style pooling. Each candidate's depth is its place in the query's fused ranking
  (reciprocal-rank fusion of every ranked list that proposed it: BM25, dense, hybrid, runs, the
  machine judge's ranking of the served model); everyone's depth 1 to `task_size` first, then the
  next `task_size`, and so on. What an evaluation of the top ranks needs, breadth-first.
- ``uncertain``: where the machine judge is least sure (1 - its most probable grade's probability)
  or disagrees with the people who graded the pair so far (|expected grade - people's mean| / 3);
  a pair the machine judge has not scored counts as most uncertain. Ties (no machine judge yet) go
  in pooled order.
- ``bandit``: Losada, Parapar & Barreiro (CIKM 2016), "Feeling lucky? Multi-armed bandits for
  ordering judgements in pooling-based evaluation": each ranked list of a query is an arm with a
  Beta(1 + relevant, 1 + not relevant) posterior over the judged part of its ranking; the arm with
  the highest posterior mean gives its next document (ties: the arm whose next document ranks
  highest). Across queries, the query whose best arm has the highest mean goes first, so runs that
  keep yielding relevant documents get deeper pools, and an untried query (mean 1/2) comes before
  one whose lists have yielded little.

A priority is a float, lower first. People's grades count when they are standing grades (skips
and withdrawn grades aside); a pair is relevant for the bandit when their mean is >= RELEVANT.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from ..grades import GRADE_MAX

FEWEST_JUDGED, POOLED, UNCERTAIN, BANDIT = "fewest-judged", "pooled", "uncertain", "bandit"
STRATEGIES = (POOLED, FEWEST_JUDGED, UNCERTAIN, BANDIT)
DEFAULT_STRATEGY = POOLED  # the winner of bench/budget.py (README, "Judge next what matters")
RELEVANT = 2        # grade from which a pair counts as relevant (TREC DL: 2 and 3)
FUSION_K = 60.0     # reciprocal-rank fusion constant (Cormack et al. 2009)
# Ties and order within a query are broken by a term small enough never to reorder the main key:
# priorities differ by at least 1e-3 between queries that differ at all, and no query has 10^6 pairs.
_WITHIN = 1e-9
_UNSEEN_UNCERTAINTY = 1.0 - 1.0 / (GRADE_MAX + 1)  # a uniform guess over the grades


@dataclass(frozen=True)
class Pair:
    """One candidate as a strategy sees it."""

    key: Hashable                                        # the candidate (its pk in the product)
    ranks: Mapping[str, int] = field(default_factory=dict)  # ranked list -> rank there (1 = best)
    grades: Sequence[int] = ()                           # people's standing grades so far
    machine: Sequence[float] | None = None               # the machine judge's grade probabilities


def priorities(strategy: str, pairs: Sequence[Pair]) -> dict[Hashable, float]:
    """{pair key: priority} for the pairs of ONE query; lower is judged first."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown judging strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if not pairs:
        return {}
    depth = pooled_depths(pairs)
    if strategy in (POOLED, FEWEST_JUDGED):
        return {key: float(d) for key, d in depth.items()}
    if strategy == UNCERTAIN:
        return {pair.key: -round(uncertainty(pair), 6) + _WITHIN * depth[pair.key] for pair in pairs}
    return _bandit(pairs, depth)


def pooled_depths(pairs: Sequence[Pair]) -> dict[Hashable, int]:
    """Each pair's place (1 = first) in the query's reciprocal-rank fusion of every ranked list;
    pairs no list ranked come last, in key order."""
    def fused(pair: Pair) -> float:
        return sum(1.0 / (FUSION_K + rank) for rank in pair.ranks.values())

    def best(pair: Pair) -> int:
        return min(pair.ranks.values(), default=10**9)

    order = sorted(pairs, key=lambda p: (-fused(p), best(p), _sortable(p.key)))
    return {pair.key: place for place, pair in enumerate(order, start=1)}


def uncertainty(pair: Pair) -> float:
    """How much a person's grade would teach: the machine judge's doubt, or its disagreement with
    the people so far, whichever is larger; most uncertain when the machine judge has not scored it."""
    if not pair.machine:
        return _UNSEEN_UNCERTAINTY
    probs = [max(0.0, float(p)) for p in pair.machine]
    total = sum(probs) or 1.0
    probs = [p / total for p in probs]
    doubt = 1.0 - max(probs)
    if not pair.grades:
        return doubt
    expected = sum(grade * p for grade, p in enumerate(probs))
    people = sum(pair.grades) / len(pair.grades)
    return max(doubt, abs(expected - people) / GRADE_MAX)


def _bandit(pairs: Sequence[Pair], depth: Mapping[Hashable, int]) -> dict[Hashable, float]:
    by_key = {pair.key: pair for pair in pairs}
    arms: dict[str, list[tuple[int, int, Hashable]]] = {}
    for pair in pairs:
        for arm, rank in pair.ranks.items():
            arms.setdefault(arm, []).append((rank, depth[pair.key], pair.key))
    lists = {arm: [key for _, _, key in sorted(ranked, key=lambda r: (r[0], r[1]))] for arm, ranked in arms.items()}
    # An arm's evidence: the judged pairs of its ranking above its first unjudged one (what
    # following it has shown so far).
    counts: dict[str, list[int]] = {}
    cursor: dict[str, int] = {}
    for arm, keys in lists.items():
        relevant = seen = 0
        position = 0
        while position < len(keys) and by_key[keys[position]].grades:
            grades = by_key[keys[position]].grades
            relevant += sum(grades) / len(grades) >= RELEVANT
            seen += 1
            position += 1
        counts[arm] = [relevant, seen]
        cursor[arm] = 0

    def mean(arm: str) -> float:
        relevant, seen = counts[arm]
        return (1.0 + relevant) / (2.0 + seen)

    best_mean = max((mean(arm) for arm in lists), default=0.5)
    emitted: dict[Hashable, int] = {}
    # The judged pairs come first in the order (they are open only when short of k judges, and
    # finishing a pair someone started is cheaper than starting another); then the arms' picks.
    for pair in sorted((p for p in pairs if p.grades), key=lambda p: depth[p.key]):
        emitted[pair.key] = len(emitted)
    while True:
        live = []
        for arm, keys in lists.items():
            while cursor[arm] < len(keys) and keys[cursor[arm]] in emitted:
                cursor[arm] += 1
            if cursor[arm] < len(keys):
                nxt = keys[cursor[arm]]
                live.append((-mean(arm), cursor[arm], depth[nxt], arm, nxt))
        if not live:
            break
        *_, arm, key = min(live)
        emitted[key] = len(emitted)
        # No grade yet for what was just picked: the posterior does not move (a batch follows the
        # best arm), but the arm's cursor does.
    for pair in sorted((p for p in pairs if p.key not in emitted), key=lambda p: depth[p.key]):
        emitted[pair.key] = len(emitted)
    return {key: -round(best_mean, 6) + _WITHIN * place for key, place in emitted.items()}


def _sortable(key: Hashable):
    return (0, key, "") if isinstance(key, int | float) else (1, 0, str(key))


def next_batch(open_priorities: Mapping[Hashable, Mapping[Hashable, float]], *, strategy: str, task_size: int,
               holders: Mapping[Hashable, int], shuffle: Mapping[Hashable, int],
               query_best: Mapping[Hashable, float | None] | None = None) -> tuple[Hashable, list] | None:
    """The task assignment hands out next, in plain Python: (query, its items). `open_priorities`
    holds, per query, the priorities of the pairs open to this annotator (still short of k judges,
    not judged by them); `query_best` each query's best priority among the pairs still short of k
    judges, whoever judged them (Query.next_priority; by default the best of `open_priorities`).
    What annotate/judging/assignment.py does in SQL (tests/workbench/test_strategies.py checks that
    the two agree) and what bench/budget.py runs: fewest-judged takes the query with the fewest
    holders and all its open pairs; the others the query with the best `query_best` (then the
    fewest holders, then the stable random key) and its `task_size` best open pairs (ties by key)."""
    live = [q for q, pairs in open_priorities.items() if pairs]
    if not live:
        return None
    if strategy == FEWEST_JUDGED:
        query = min(live, key=lambda q: (holders.get(q, 0), shuffle.get(q, 0), _sortable(q)))
        return query, sorted(open_priorities[query], key=_sortable)

    def best(q) -> float:
        value = min(open_priorities[q].values()) if query_best is None else query_best.get(q)
        return float("inf") if value is None else value

    query = min(live, key=lambda q: (best(q), holders.get(q, 0), shuffle.get(q, 0), _sortable(q)))
    items = sorted(open_priorities[query], key=lambda key: (open_priorities[query][key], _sortable(key)))
    return query, sorted(items[:task_size], key=_sortable)
