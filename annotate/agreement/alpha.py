"""Krippendorff's alpha from the coincidence matrix, and a bootstrap interval for it.

alpha = 1 - D_o / D_e with D_o = sum_ck o_ck d_ck / n and D_e = sum_ck n_c n_k d_ck / (n (n - 1)),
where o is the coincidence matrix, n_c its marginals (pairable values per grade) and d the
squared difference of the level of measurement (Krippendorff 2011, "Computing Krippendorff's
Alpha-Reliability"). Items with fewer than two grades cannot be paired and drop out.

Everything is built from per-item value counts (items x grades, one np.bincount), so the cost is
one pass over the judgments plus a (grades x items) @ (items x grades) product.
"""
from __future__ import annotations

from typing import Iterable, Literal

import numpy as np
from django.utils.translation import gettext_noop

from .ratings import Ratings, Scale

Level = Literal["nominal", "ordinal", "interval"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval")

# Why a figure is undefined: stored in English with the report, shown in the reader's language.
NO_PAIRABLE_ITEMS = gettext_noop("no item has grades from two or more annotators")
NO_VARIATION = gettext_noop("every pairable grade is the same value, so there is no disagreement to expect (0/0)")


def value_counts(ratings: Ratings) -> np.ndarray:
    """items x grades: how many annotators gave each grade of the scale to each item."""
    size = ratings.scale.size
    cells = ratings.item * size + (ratings.grade - ratings.scale.low)
    return np.bincount(cells, minlength=ratings.n_items * size).reshape(ratings.n_items, size)


def pairable(counts: np.ndarray) -> np.ndarray:
    """The rows of `counts` for items with at least two grades (the only ones alpha can pair)."""
    return counts[counts.sum(axis=1) >= 2]


def coincidence_matrix(counts: np.ndarray) -> np.ndarray:
    """o_ck = sum over items u of (n_uc n_uk - [c == k] n_uc) / (m_u - 1), for items with m_u >= 2."""
    counts = pairable(counts).astype(np.float64)
    if counts.size == 0:
        return np.zeros((counts.shape[1],) * 2)
    weighted = counts / (counts.sum(axis=1, keepdims=True) - 1)
    return weighted.T @ counts - np.diag(weighted.sum(axis=0))


def distance_matrix(level: Level, scale: Scale, marginals: np.ndarray) -> np.ndarray:
    """Squared differences d_ck over the scale's values; marginals may carry leading batch axes.

    The ordinal difference between grades c <= k is (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 with
    n_g the coincidence marginals, as Krippendorff defines it. A scale value nobody used has
    n_g = 0 and so adds nothing: the result is the same as `krippendorff.alpha` with
    value_domain = the scale.
    """
    size = scale.size
    if level == "nominal":
        return 1.0 - np.eye(size)
    if level == "interval":
        values = scale.values.astype(np.float64)
        return (values[:, None] - values[None, :]) ** 2
    if level == "ordinal":
        marginals = np.asarray(marginals, dtype=np.float64)
        index = np.arange(size)
        low, high = np.minimum.outer(index, index), np.maximum.outer(index, index)
        running = np.cumsum(marginals, axis=-1)
        between = running[..., high] - running[..., low] + marginals[..., low]
        return (between - (marginals[..., low] + marginals[..., high]) / 2) ** 2
    raise ValueError(f"unknown level of measurement {level!r}; use one of {', '.join(LEVELS)}")


def alpha_from_coincidences(coincidences: np.ndarray, level: Level, scale: Scale) -> float | None:
    """alpha, or None where it is undefined (no pairable item, or no variation at all)."""
    value, _ = alpha_with_reason(coincidences, level, scale)
    return value


def alpha_with_reason(coincidences: np.ndarray, level: Level, scale: Scale) -> tuple[float | None, str | None]:
    marginals = coincidences.sum(axis=0)
    total = marginals.sum()
    if total < 2:
        return None, NO_PAIRABLE_ITEMS
    distances = distance_matrix(level, scale, marginals)
    expected = marginals @ distances @ marginals / (total - 1)
    if expected <= 0:
        return None, NO_VARIATION
    return float(1.0 - (coincidences * distances).sum() / expected), None


def krippendorff_alpha(ratings: Ratings, level: Level = "ordinal") -> float | None:
    """Krippendorff's alpha of `ratings` at one level of measurement (None where undefined)."""
    return alpha_from_coincidences(coincidence_matrix(value_counts(ratings)), level, ratings.scale)


def bootstrap_alpha(
    counts: np.ndarray,
    scale: Scale,
    *,
    levels: Iterable[Level] = LEVELS,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[Level, tuple[float, float] | None]:
    """Percentile interval for alpha from resampling the pairable items with replacement.

    Items with the same value counts add the same coincidences, so a resample is fully described
    by how many times it draws each distinct value-count pattern: a multinomial over the patterns
    (a few dozen for 4 judges on 0..3), drawn for all resamples at once. Resamples in which alpha
    is undefined (no variation) are left out; the interval is None when none is left or there
    is nothing to resample.
    """
    levels = tuple(levels)
    if resamples < 1:
        return {level: None for level in levels}
    patterns, frequency = _patterns(pairable(counts))
    if frequency.sum() == 0:
        return {level: None for level in levels}
    size = scale.size
    per_pattern = patterns[:, :, None] * patterns[:, None, :] - patterns[:, :, None] * np.eye(size)
    per_pattern = (per_pattern / (patterns.sum(axis=1) - 1)[:, None, None]).reshape(len(patterns), -1)
    rng = np.random.default_rng(seed)
    n_items = int(frequency.sum())
    draws = rng.multinomial(n_items, frequency / n_items, size=resamples).astype(np.float64)
    coincidences = (draws @ per_pattern).reshape(resamples, size, size)
    tail = (1 - confidence) / 2 * 100
    intervals = {}
    for level in levels:
        alphas = _batched_alpha(coincidences, level, scale)
        alphas = alphas[~np.isnan(alphas)]
        if alphas.size == 0:
            intervals[level] = None
        else:
            low, high = np.percentile(alphas, [tail, 100 - tail])
            intervals[level] = (float(low), float(high))
    return intervals


def _patterns(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of `counts` (as float) and how many items have each."""
    if counts.size == 0:
        return np.zeros((0, counts.shape[1])), np.zeros(0)
    base = int(counts.max()) + 1
    if base ** counts.shape[1] < 2**62:
        codes = counts.astype(np.int64) @ (base ** np.arange(counts.shape[1], dtype=np.int64))
        _, first, frequency = np.unique(codes, return_index=True, return_counts=True)
        return counts[first].astype(np.float64), frequency.astype(np.float64)
    rows, frequency = np.unique(counts, axis=0, return_counts=True)
    return rows.astype(np.float64), frequency.astype(np.float64)


def _batched_alpha(coincidences: np.ndarray, level: Level, scale: Scale) -> np.ndarray:
    marginals = coincidences.sum(axis=1)
    total = marginals.sum(axis=1)
    distances = distance_matrix(level, scale, marginals)
    if distances.ndim == 2:
        distances = np.broadcast_to(distances, coincidences.shape)
    expected = np.einsum("bi,bij,bj->b", marginals, distances, marginals) / (total - 1)
    observed = (coincidences * distances).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, 1.0 - observed / expected, np.nan)


def alpha_by_group(ratings: Ratings, item_group: np.ndarray, level: Level = "ordinal") -> np.ndarray:
    """alpha within each group of items at once (e.g. per query, with candidates as items):
    `item_group[i]` is the group (0..G-1) of item code i. NaN where a group's alpha is undefined.

    Each item's coincidences are summed per group with one bincount per grade pair, then the
    batched formula runs over all groups together — no loop over groups or items.
    """
    item_group = np.asarray(item_group, dtype=np.int64)
    if item_group.shape != (ratings.n_items,):
        raise ValueError(f"item_group needs one group per item ({ratings.n_items}), got shape {item_group.shape}")
    size = ratings.scale.size
    n_groups = int(item_group.max()) + 1 if item_group.size else 0
    counts = value_counts(ratings).astype(np.float64)
    judges = counts.sum(axis=1)
    keep = judges >= 2
    counts, group, judges = counts[keep], item_group[keep], judges[keep]
    weighted = counts / (judges - 1)[:, None]
    coincidences = np.empty((n_groups, size, size))
    for c in range(size):
        for k in range(size):
            per_item = weighted[:, c] * (counts[:, k] - (c == k))
            coincidences[:, c, k] = np.bincount(group, weights=per_item, minlength=n_groups)
    return _batched_alpha(coincidences, level, ratings.scale)
