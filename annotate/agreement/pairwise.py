"""Pairs of judgments on the same item: percent agreement and per-annotator-pair confusion tables."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ratings import Ratings


@dataclass(frozen=True)
class PairwiseAgreement:
    """Shares of the judgment pairs within items that agree exactly / within one grade.

    Pooled over every unordered pair of grades given to the same item (an item with m grades
    gives m(m-1)/2 pairs), so items with more judges weigh more — the usual "pairwise percent
    agreement". None when no item has two grades.
    """

    percent_agreement: float | None
    within_one_agreement: float | None
    n_pairs: int
    n_items: int
    n_judgments: int


def pairwise_agreement(counts: np.ndarray) -> PairwiseAgreement:
    """From the items x grades value counts: equal pairs are sum_c n_c(n_c - 1)/2 per item,
    neighbouring pairs sum_c n_c n_(c+1)."""
    counts = counts[counts.sum(axis=1) >= 2].astype(np.int64)
    judges = counts.sum(axis=1)
    pairs = int((judges * (judges - 1) // 2).sum())
    if pairs == 0:
        return PairwiseAgreement(None, None, 0, 0, 0)
    equal = int((counts * (counts - 1) // 2).sum())
    neighbours = int((counts[:, :-1] * counts[:, 1:]).sum())
    return PairwiseAgreement(equal / pairs, (equal + neighbours) / pairs, pairs, len(counts), int(judges.sum()))


@dataclass(frozen=True)
class PairConfusions:
    """For each annotator pair (first < second, as codes) that shares an item: the grades x grades
    table of (first's grade, second's grade) over the items both judged."""

    first: np.ndarray
    second: np.ndarray
    confusions: np.ndarray

    @property
    def shared_items(self) -> np.ndarray:
        return self.confusions.sum(axis=(1, 2)).astype(np.int64)


def pair_confusions(ratings: Ratings) -> PairConfusions:
    """All within-item judgment pairs at once: sort by (item, annotator), then for each offset d
    pair position i with i + d where both hold the same item. The loop runs over offsets (at most
    the largest number of judges on one item), never over items."""
    size = ratings.scale.size
    order = np.lexsort((ratings.annotator, ratings.item))
    item, annotator = ratings.item[order], ratings.annotator[order]
    grade = ratings.grade[order] - ratings.scale.low
    n_annotators = np.int64(max(ratings.n_annotators, 1))
    keys = []
    most_judges = int(np.bincount(item).max()) if item.size else 0
    for offset in range(1, most_judges):
        left = np.flatnonzero(item[offset:] == item[:-offset])
        right = left + offset
        # Sorted by annotator within the item, so annotator[left] < annotator[right].
        pair = annotator[left] * n_annotators + annotator[right]
        keys.append((pair * size + grade[left]) * size + grade[right])
    if not keys:
        empty = np.zeros(0, dtype=np.int64)
        return PairConfusions(empty, empty, np.zeros((0, size, size)))
    keys = np.concatenate(keys)
    pair_of_key, cell = np.divmod(keys, size * size)
    pairs, pair_code = np.unique(pair_of_key, return_inverse=True)
    tables = np.bincount(pair_code.reshape(-1) * (size * size) + cell, minlength=len(pairs) * size * size)
    first, second = np.divmod(pairs, n_annotators)
    return PairConfusions(first, second, tables.reshape(len(pairs), size, size))
