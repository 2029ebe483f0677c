"""Fleiss' kappa over items with equally many judges, and Cohen's kappa per annotator pair.

Both take count tables, never per-item Python objects:
- Fleiss: the items x grades value counts (as statsmodels' `aggregate_raters` builds them);
- Cohen: one grades x grades confusion matrix per annotator pair over the items both judged
  (`pairwise.pair_confusions`), with the labels fixed to the scale, so every pair's kappa equals
  `sklearn.metrics.cohen_kappa_score(a, b, labels=scale, weights=...)`.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from django.utils.translation import gettext_noop

Weights = Literal["none", "linear", "quadratic"]
WEIGHTS: tuple[Weights, ...] = ("none", "linear", "quadratic")

# Why Fleiss' kappa is undefined: stored in English with the report, shown in the reader's language.
FLEISS_NO_ITEMS = gettext_noop("no item has a grade")
FLEISS_UNEQUAL = gettext_noop("items have different numbers of judges; Fleiss' kappa needs the same number for every item")
FLEISS_ONE_JUDGE = gettext_noop("every item has a single judge, so no two grades can agree or disagree")
FLEISS_NO_VARIATION = gettext_noop("every grade is the same value, so chance agreement is 1 (0/0)")


def fleiss_kappa(counts: np.ndarray) -> tuple[float | None, str | None]:
    """Fleiss (1971) kappa from items x grades counts; items with no grade are ignored.

    kappa = (P_bar - P_e) / (1 - P_e) with P_bar the mean share of agreeing judge pairs per item and
    P_e the sum of squared grade shares. Undefined (None with the reason) when the judged items
    do not all have the same number n >= 2 of judges, or when one grade is all there is
    (P_e = 1). statsmodels' `fleiss_kappa` asserts on unequal counts and divides by zero on the others.
    """
    counts = counts[counts.sum(axis=1) > 0].astype(np.float64)
    if counts.shape[0] == 0:
        return None, FLEISS_NO_ITEMS
    judges = counts.sum(axis=1)
    if (judges != judges[0]).any():
        return None, FLEISS_UNEQUAL
    n = judges[0]
    if n < 2:
        return None, FLEISS_ONE_JUDGE
    shares = counts.sum(axis=0) / counts.sum()
    chance = float((shares * shares).sum())
    if chance >= 1.0:
        return None, FLEISS_NO_VARIATION
    observed = float((((counts * counts).sum(axis=1) - n) / (n * (n - 1))).mean())
    return (observed - chance) / (1.0 - chance), None


def weight_matrix(size: int, weights: Weights) -> np.ndarray:
    """Disagreement weights over label positions: 1 off the diagonal, |i - j| or (i - j)^2."""
    index = np.arange(size, dtype=np.float64)
    if weights == "none":
        return 1.0 - np.eye(size)
    if weights == "linear":
        return np.abs(index[:, None] - index[None, :])
    if weights == "quadratic":
        return (index[:, None] - index[None, :]) ** 2
    raise ValueError(f"unknown kappa weights {weights!r}; use one of {', '.join(WEIGHTS)}")


def cohen_kappas(confusions: np.ndarray, weights: Weights) -> np.ndarray:
    """Cohen's kappa for a stack of confusion matrices (pairs x grades x grades); NaN where undefined.

    kappa = 1 - sum(w * observed) / sum(w * expected), expected = outer(row totals, column
    totals) / n. It is undefined when the pair shares no item or both gave one and the same
    grade throughout (no expected disagreement) — sklearn returns its `replace_undefined_by` there.
    """
    confusions = np.asarray(confusions, dtype=np.float64)
    size = confusions.shape[-1]
    w = weight_matrix(size, weights)
    totals = confusions.sum(axis=(1, 2))
    rows, columns = confusions.sum(axis=2), confusions.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.einsum("pi,ij,pj->p", rows, w, columns) / totals
        observed = (confusions * w).sum(axis=(1, 2))
        return np.where((totals > 0) & (expected > 0), 1.0 - observed / expected, np.nan)
