"""The position-based click model (PBM), fitted by EM on aggregated click counts.

A user clicks a shown document when they examine its position and find it attractive:

    P(click | pair p shown at position r) = examination[r] * attractiveness[p]

independently (Richardson et al. 2007; Chuklin, Markov & de Rijke, "Click Models for Web
Search", 2015, ch. 3-4, whose EM updates this follows). Raw click-through rate mixes the two: a
relevant document that the engine shows at position 9 gets few clicks because few people look
there. The model separates them, so a pair's attractiveness is comparable wherever it was shown --
which needs the pairs to have been shown at more than one position across the log (rankings that
change over time, interleaving, personalisation); with every pair always at the same position the
two factors cannot be told apart and the fit says so (`identified`).

Input: one row per (pair, position) cell with its impressions n and clicks c (sums over the log;
the EM needs no more). E-step for the n - c impressions without a click:

    P(attractive | no click) = a (1 - e) / (1 - a e)      P(examined | no click) = e (1 - a) / (1 - a e)

M-step: each parameter is its expected count of "yes" over its impressions. A pair's attractiveness
has a Beta prior of `prior_strength` pseudo-impressions centred on the log's mean attractiveness,
so a pair shown twice at the bottom is not read as "never attractive" (its posterior stays near the
mean; `examinations` -- impressions weighted by the examination of their position -- says how much
evidence a pair has). Vectorised over cells with np.bincount: no Python loop over pairs.

No library is used: PyClick (the reference implementation of these models) is unmaintained since
2016 and object-per-session; the PBM's EM is a dozen lines of numpy over counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ClickModelError(ValueError):
    """Inputs that break a rule of the model: mismatched arrays, clicks above impressions..."""


@dataclass(frozen=True, eq=False)
class PositionBasedModel:
    attractiveness: np.ndarray   # (n_pairs,) P(attractive), comparable across positions
    examination: np.ndarray      # (n_positions,) P(examined) at positions 1..n_positions
    impressions: np.ndarray      # (n_pairs,) times shown
    clicks: np.ndarray           # (n_pairs,) times clicked
    examinations: np.ndarray     # (n_pairs,) sum of impressions * examination[position]
    iterations: int
    converged: bool
    identified: bool             # False when no pair was shown at two positions

    @property
    def relative_examination(self) -> np.ndarray:
        """Examination relative to the top position (1.0 at position 1): the position bias."""
        top = self.examination[0]
        return self.examination / top if top > 0 else self.examination

    def click_through_rate(self) -> np.ndarray:
        """The raw, biased estimate: clicks / impressions (0 for a pair never shown)."""
        return np.divide(self.clicks, self.impressions, out=np.zeros(len(self.clicks)),
                         where=self.impressions > 0)


def fit_position_based_model(pair, position, impressions, clicks, *, n_pairs: int, n_positions: int | None = None,
                             prior_strength: float = 1.0, max_iter: int = 1000,
                             tol: float = 1e-5) -> PositionBasedModel:
    """Fit the PBM. `pair` (0..n_pairs-1) and `position` (1-based) name each cell; `impressions`
    and `clicks` are its counts. Deterministic: starts from 0.5 everywhere, as the book does."""
    pair, position, shown, clicked = (np.asarray(a) for a in (pair, position, impressions, clicks))
    _check(pair, position, shown, clicked, n_pairs, prior_strength)
    n_positions = int(position.max()) if n_positions is None else n_positions
    if position.size and position.max() > n_positions:
        raise ClickModelError(f"a position above n_positions ({n_positions})")
    rank = position - 1
    shown = shown.astype(float)
    clicked = clicked.astype(float)
    unclicked = shown - clicked
    per_pair = np.bincount(pair, weights=shown, minlength=n_pairs)
    per_rank = np.bincount(rank, weights=shown, minlength=n_positions)
    attract = np.full(n_pairs, 0.5)
    examine = np.full(n_positions, 0.5)
    converged, iterations = False, 0
    for iterations in range(1, max_iter + 1):
        a, e = attract[pair], examine[rank]
        missed = np.maximum(1.0 - a * e, 1e-12)
        attractive = clicked + unclicked * a * (1.0 - e) / missed
        examined = clicked + unclicked * e * (1.0 - a) / missed
        mean = attractive.sum() / max(shown.sum(), 1.0)   # the prior's centre: the log's mean
        new_attract = (np.bincount(pair, weights=attractive, minlength=n_pairs) + prior_strength * mean) / (
            per_pair + prior_strength)
        new_examine = np.divide(np.bincount(rank, weights=examined, minlength=n_positions), per_rank,
                                out=np.zeros(n_positions), where=per_rank > 0)
        # Convergence is judged on the click probabilities a * e the model predicts per cell: the
        # split of a product between its two factors moves slowly along a nearly flat direction
        # (scaling one up and the other down), which only the weak prior pins down.
        change = np.abs(new_attract[pair] * new_examine[rank] - a * e).max(initial=0.0)
        attract, examine = new_attract, new_examine
        if change < tol:
            converged = True
            break
    examinations = np.bincount(pair, weights=shown * examine[rank], minlength=n_pairs)
    positions_per_pair = np.bincount(np.unique(np.stack([pair, rank]), axis=1)[0], minlength=n_pairs) \
        if pair.size else np.zeros(n_pairs)
    return PositionBasedModel(
        attractiveness=attract, examination=examine, impressions=per_pair,
        clicks=np.bincount(pair, weights=clicked, minlength=n_pairs), examinations=examinations,
        iterations=iterations, converged=converged, identified=bool((positions_per_pair > 1).any()))


def _check(pair, position, shown, clicked, n_pairs, prior_strength) -> None:
    if not (pair.shape == position.shape == shown.shape == clicked.shape) or pair.ndim != 1:
        raise ClickModelError("pair, position, impressions and clicks must be 1-d arrays of one length")
    for name, values in (("pair", pair), ("position", position), ("impressions", shown), ("clicks", clicked)):
        if values.size and not np.issubdtype(values.dtype, np.integer):
            raise ClickModelError(f"{name} must hold integers, got {values.dtype}")
    if pair.size and (pair.min() < 0 or pair.max() >= n_pairs):
        raise ClickModelError(f"pair indices must lie in 0..{n_pairs - 1}")
    if position.size and position.min() < 1:
        raise ClickModelError("positions start at 1")
    if (clicked < 0).any() or (clicked > shown).any():
        raise ClickModelError("clicks must lie in 0..impressions for every cell")
    if not prior_strength >= 0:
        raise ClickModelError(f"prior_strength must be >= 0, got {prior_strength}")


def ordinal_grades(scores, *, shares=None, n_grades: int = 4) -> np.ndarray:
    """Cut continuous scores into grades 0..n_grades-1 at the quantiles that give each grade its
    share (`shares`, e.g. the share of each grade among people's grades of the collection; equal
    shares when None). Ties stay together: a score never gets two grades. Only the order of the
    scores matters, so raw click-through rate and attractiveness are cut the same way."""
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        return np.zeros(0, dtype=int)
    shares = np.full(n_grades, 1.0 / n_grades) if shares is None else np.asarray(shares, dtype=float)
    if shares.shape != (n_grades,) or (shares < 0).any() or not shares.sum() > 0:
        raise ClickModelError(f"shares must be {n_grades} non-negative numbers with a positive sum")
    cuts = np.quantile(scores, np.cumsum(shares / shares.sum())[:-1])
    # a grade counts the cuts strictly below the score: a score equal to a cut stays under it, so
    # equal scores (the many pairs never clicked) always share one grade
    return np.searchsorted(cuts, scores, side="left").astype(int)
