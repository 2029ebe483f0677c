"""The promotion gate: promote a candidate model only when dev shows it is better than every reference.

Plain Python and numpy (no Django), so a training run, the runs page and ``bench/gate.py`` share it.

Input: per-query dev NDCG@10 of the candidate and of each reference (the promoted model if any,
BM25, the zero-shot base), as ``{query id: figure}``. Queries are paired by id; every reference
must have a figure for every query the candidate has (a reference's extra queries are not used).
A query whose NDCG is undefined (no judged document graded above 0, NaN in ``training.metrics``)
has to be left out by the caller: the gate refuses NaN rather than guess.

The test, for each reference: a paired bootstrap over dev queries. ``resamples`` times, draw the
dev queries with replacement and take the mean of (candidate - reference) over the draw; every
reference and the candidate's own mean use the same draws. The decision reads a low quantile of
those means -- the lower bound of a one-sided (1 - alpha) interval for the gain -- and promotes
only when it is above ``margin`` for EVERY reference, so a small dev set's luck cannot pass a model
that is no better. The intervals reported are two-sided with coverage 1 - 2 alpha (95% at the
default alpha 0.025), so their low end is exactly the bound the decision used.

The quantile read is not alpha itself but Hesterberg's "expanded percentile" level
(Hesterberg 2015, "What teachers should know about the bootstrap", sec. 4):
alpha' = Phi(-sqrt(n / (n - 1)) * t(n - 1, 1 - alpha)). The plain percentile interval of a mean is
too narrow on small samples (the bootstrap's variance is (n - 1) / n of the sample's, and it
behaves like z where t is due), which at 20 dev queries would promote a no-better model more often
than alpha says; alpha' is 0.016 at 20 queries, 0.021 at 50, and tends to alpha as dev grows.

Why alpha 0.025 and margin 0 (training.config.DEFAULT_PROMOTION_MARGIN): alpha is the chance that
a candidate no better than a reference is promoted anyway (the gate's false-promotion rate), and
"the 95% interval of the gain lies above 0" is the usual significance test of IR evaluation. A
margin is in NDCG points, whose meaning depends on the collection: on kuake-qtr's judged titles
BM25 already scores 0.93-0.96 and a real gain is +0.005 to +0.015, on trec-dl19 0.55. The earlier
defaults (alpha 0.05, margin 0.005) promote an equal model as rarely (bench/gate.py, 200 trials,
20/50/100 dev queries: at most 4.0% both ways at a per-query sd of 0.0716, 1.5% vs 4.0% at 0.0365)
but a small real gain far less often where queries differ little (gain 0.01 on 100 dev queries at
sd 0.0365: 37.5% against 78.5%): the fixed margin, not the evidence, decided. A team that wants
a practical margin on top sets ``promotion_margin``. 2,000 resamples put the Monte Carlo error of
a 2.5% percentile well under a tenth of the interval's width (Efron & Tibshirani recommend
>= 1,000 for percentile intervals) and cost milliseconds. Power is then set by the dev size and
the per-query noise: ``bench/gate.py`` measures it.

Below ``min_dev_queries`` queries the bootstrap's interval is too unreliable to trust, so nothing
is promoted -- unless staff override with a recorded reason, which promotes and keeps the reason.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from .config import DEFAULT_PROMOTION_MARGIN

DEFAULT_ALPHA = 0.025
DEFAULT_MIN_DEV_QUERIES = 20
DEFAULT_RESAMPLES = 2000
# The bootstrap gathers resamples x queries x models values; chunk the resamples so a large dev
# set cannot take gigabytes (the result does not depend on the chunking).
_GATHER_LIMIT = 2_000_000
_SHOWN_IDS = 5

# Decision branches (GateDecision.branch), one per way the gate can end.
NOT_ENOUGH = "not-enough-dev-queries"
OVERRIDE = "override"
FAILS = "fails"
PASSES = "passes"


class GateInputError(ValueError):
    """Figures or settings the gate refuses to decide on."""


@dataclass(frozen=True)
class ReferenceComparison:
    """The candidate against one reference on the same dev queries."""

    reference: str
    candidate_mean: float
    reference_mean: float
    mean_difference: float       # candidate - reference, over the dev queries
    interval: tuple[float, float]  # bootstrap percentiles of the difference, coverage 1 - 2 alpha
    passes: bool                 # interval[0] > margin

    @property
    def lower_bound(self) -> float:
        return self.interval[0]


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    branch: str                  # NOT_ENOUGH, OVERRIDE, FAILS or PASSES
    reason: str                  # one sentence, in English, as stored (training.wording says it again on the pages)
    dev_queries: int
    min_dev_queries: int
    margin: float
    alpha: float
    bootstrap_alpha: float       # the quantile actually read (expanded percentile, see above)
    resamples: int
    seed: int
    candidate_mean: float | None  # None with no dev query at all
    candidate_interval: tuple[float, float] | None  # the same for its own mean
    comparisons: tuple[ReferenceComparison, ...]  # empty with no dev query at all
    override_reason: str | None  # set only when the override promoted
    # An override was asked for but dev was large enough to test, so the test decided (the reason
    # says so; the pages word it again from this flag).
    override_not_applied: bool = False

    @property
    def interval_level(self) -> float:
        """Two-sided coverage of the reported intervals (0.95 at alpha 0.025)."""
        return 1 - 2 * self.alpha

    def as_json(self) -> dict:
        """JSON-ready dict for a run's metrics (tuples become lists)."""
        data = asdict(self)
        data["interval_level"] = self.interval_level
        if self.candidate_interval is not None:
            data["candidate_interval"] = list(self.candidate_interval)
        data["comparisons"] = [{**asdict(c), "interval": list(c.interval)} for c in self.comparisons]
        return data


def decide_promotion(
    candidate: Mapping,
    references: Mapping[str, Mapping],
    *,
    margin: float = DEFAULT_PROMOTION_MARGIN,
    alpha: float = DEFAULT_ALPHA,
    min_dev_queries: int = DEFAULT_MIN_DEV_QUERIES,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    override_reason: str | None = None,
) -> GateDecision:
    """Whether to promote ``candidate``, from its per-query dev NDCG@10 and each reference's.

    ``references`` maps a reference's name ("promoted", "bm25", "zero-shot base") to its figures.
    ``override_reason`` promotes a candidate that dev is too small to test; it is not applied
    when dev is large enough (the test decides then). Deterministic given ``seed``.
    """
    _check_settings(margin, alpha, min_dev_queries, resamples, seed)
    override_reason = _checked_override(override_reason)
    query_ids, figures, names = _paired_figures(candidate, references)
    n = len(query_ids)
    level = expanded_alpha(alpha, n)
    settings = dict(dev_queries=n, min_dev_queries=min_dev_queries, margin=margin, alpha=alpha,
                    bootstrap_alpha=level, resamples=resamples, seed=seed)

    comparisons: tuple[ReferenceComparison, ...] = ()
    candidate_mean = candidate_interval = None
    if n:
        means = _bootstrap_means(figures, resamples, seed)
        candidate_mean = float(figures[:, 0].mean())
        candidate_interval = _percentiles(means[:, 0], level)
        comparisons = tuple(
            _comparison(name, figures[:, 0], figures[:, k], means[:, 0] - means[:, k], level, margin)
            for k, name in enumerate(names, start=1)
        )
    decided = dict(settings, candidate_mean=candidate_mean, candidate_interval=candidate_interval,
                   comparisons=comparisons)

    if n < min_dev_queries:
        short = f"not enough dev queries ({n}): the gate needs at least {min_dev_queries}"
        if override_reason is None:
            return GateDecision(promote=False, branch=NOT_ENOUGH, reason=f"{short}, so nothing is promoted",
                                override_reason=None, **decided)
        return GateDecision(promote=True, branch=OVERRIDE, override_reason=override_reason,
                            reason=f"{short}; promoted by staff override: {override_reason}", **decided)

    failing = [c for c in comparisons if not c.passes]
    bound = f"{one_sided_level(alpha)} lower bound"
    unused = " (override not applied: dev is large enough to test)" if override_reason else ""
    if failing:
        against = "; ".join(f"{c.reference} (gain {c.mean_difference:+.4f}, {bound} {c.lower_bound:+.4f})"
                            for c in failing)
        reason = (f"not promoted: fails against {against}, not above the margin {margin:+.4f} "
                  f"on {n} dev queries{unused}")
        return GateDecision(promote=False, branch=FAILS, reason=reason, override_reason=None,
                            override_not_applied=bool(unused), **decided)
    gains = ", ".join(f"{c.reference} {c.mean_difference:+.4f} (bound {c.lower_bound:+.4f})" for c in comparisons)
    reason = (f"promoted: the {bound} of the dev NDCG@10 gain is above the margin {margin:+.4f} "
              f"against every reference on {n} dev queries: {gains}{unused}")
    return GateDecision(promote=True, branch=PASSES, reason=reason, override_reason=None,
                        override_not_applied=bool(unused), **decided)


def mean_interval(figures: Mapping, *, alpha: float = DEFAULT_ALPHA, resamples: int = DEFAULT_RESAMPLES,
                  seed: int = 0) -> tuple[float, float] | None:
    """The bootstrap interval of one model's mean dev NDCG@10 (coverage 1 - 2 alpha), read as the
    candidates' are: for a reference's row on the run page. None with no query."""
    query_ids = sorted(figures, key=str)
    if not query_ids:
        return None
    values = _figures("reference", figures, query_ids)[:, None]
    return _percentiles(_bootstrap_means(values, resamples, seed)[:, 0], expanded_alpha(alpha, len(query_ids)))


def one_sided_level(alpha: float) -> str:
    """The decision's one-sided confidence as people write it: "97.5%" at alpha 0.025, "95%" at 0.05."""
    return f"{100 * (1 - alpha):.10g}%"


def expanded_alpha(alpha: float, queries: int) -> float:
    """The percentile level that gives a bootstrap interval of a mean over ``queries`` its nominal
    one-sided coverage 1 - alpha (Hesterberg's expanded percentile interval)."""
    if queries < 2:
        return alpha  # one query: every resample is the same point, any level reads it
    normal = NormalDist()
    t = _t_quantile(normal.inv_cdf(1 - alpha), queries - 1)
    return normal.cdf(-math.sqrt(queries / (queries - 1)) * t)


def _t_quantile(z: float, df: int) -> float:
    """Student's t quantile from the normal one by the Cornish-Fisher expansion (Abramowitz &
    Stegun 26.7.5): within 3e-4 of the exact value from 5 degrees of freedom on for alpha >= 0.025,
    without pulling scipy.stats into the gate for one number."""
    z3, z5, z7 = z ** 3, z ** 5, z ** 7
    return (z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2)
            + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3)
            + (79 * z ** 9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * df ** 4))


def _comparison(name, candidate, reference, difference_means, alpha, margin) -> ReferenceComparison:
    interval = _percentiles(difference_means, alpha)
    return ReferenceComparison(
        reference=name, candidate_mean=float(candidate.mean()), reference_mean=float(reference.mean()),
        mean_difference=float((candidate - reference).mean()), interval=interval,
        passes=interval[0] > margin,
    )


def _bootstrap_means(figures: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """``[resamples, models]`` means of the figures over queries drawn with replacement."""
    n, models = figures.shape
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    chunk = max(1, _GATHER_LIMIT // (n * models))
    return np.concatenate([figures[draws[start:start + chunk]].mean(axis=1)
                           for start in range(0, resamples, chunk)])


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def _paired_figures(candidate: Mapping, references: Mapping[str, Mapping]):
    """Query ids (a canonical order, so the draws do not depend on dict order), a
    ``[queries, 1 + references]`` array with the candidate first, and the reference names."""
    if not isinstance(candidate, Mapping):
        raise GateInputError(f"candidate figures must be a mapping of query id to NDCG@10, got {type(candidate).__name__}")
    if not isinstance(references, Mapping) or not references:
        raise GateInputError("the gate needs at least one reference (promoted model, BM25, zero-shot base)")
    query_ids = sorted(candidate, key=str)
    columns = [_figures("candidate", candidate, query_ids)]
    for name, figures in references.items():
        if not isinstance(name, str) or not name.strip():
            raise GateInputError(f"a reference needs a name for the run's page, got {name!r}")
        if not isinstance(figures, Mapping):
            raise GateInputError(f"reference {name!r}: figures must be a mapping of query id to NDCG@10")
        missing = [q for q in query_ids if q not in figures]
        if missing:
            raise GateInputError(f"reference {name!r} lacks {len(missing)} dev queries the candidate has: "
                                 f"{_show(missing)}; queries are paired by id")
        columns.append(_figures(f"reference {name!r}", figures, query_ids))
    return query_ids, np.column_stack(columns) if query_ids else np.empty((0, len(columns))), list(references)


def _figures(owner: str, figures: Mapping, query_ids: list) -> np.ndarray:
    values = []
    for query_id in query_ids:
        value = figures[query_id]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise GateInputError(f"{owner}: NDCG@10 of query {query_id!r} is not a number: {value!r}")
        values.append(float(value))
    array = np.asarray(values, dtype=float)
    bad = [q for q, v in zip(query_ids, array) if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise GateInputError(f"{owner}: NDCG@10 must be finite and in [0, 1]; {len(bad)} queries are not: "
                             f"{_show(bad, figures)} (leave out queries whose NDCG is undefined)")
    return array


def _show(query_ids: list, figures: Mapping | None = None) -> str:
    shown = [f"{q!r}={figures[q]!r}" if figures is not None else repr(q) for q in query_ids[:_SHOWN_IDS]]
    more = f" and {len(query_ids) - _SHOWN_IDS} more" if len(query_ids) > _SHOWN_IDS else ""
    return ", ".join(shown) + more


def _check_settings(margin, alpha, min_dev_queries, resamples, seed) -> None:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not -1 < margin < 1:
        raise GateInputError(f"margin must be a number in (-1, 1), got {margin!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise GateInputError(f"alpha must be a number in (0, 0.5), got {alpha!r}")
    for name, value, low in (("min_dev_queries", min_dev_queries, 1), ("resamples", resamples, 100),
                             ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise GateInputError(f"{name} must be an integer >= {low}, got {value!r}")


def _checked_override(override_reason) -> str | None:
    if override_reason is None:
        return None
    if not isinstance(override_reason, str) or not override_reason.strip():
        raise GateInputError("an override needs a reason to record: got "
                             f"{override_reason!r}; give one sentence on why to promote anyway")
    return override_reason.strip()


@dataclass(frozen=True)
class RunDecision:
    """A run's choice among its candidates: each one's gate, the winner (promoted) or None, and
    the candidate the run keeps as its model version (the winner, else the best on dev)."""

    decisions: dict[str, GateDecision]
    winner: str | None
    chosen: str
    decision: GateDecision           # the chosen candidate's gate


def decide_run(
    candidates: Mapping[str, Mapping],
    references: Mapping[str, Mapping],
    *,
    zero_shot: str | None = None,
    **gate_options,
) -> RunDecision:
    """Gate every candidate against the references and, but for itself, the zero-shot base
    (``candidates[zero_shot]``); the winner is the best dev mean among those that pass.

    Picking the best of several passing candidates on the same dev queries is a second look at
    dev; it only ever chooses between models that each cleared every reference on their own.
    """
    if not candidates:
        raise GateInputError("a run needs at least one candidate model to decide on")
    decisions: dict[str, GateDecision] = {}
    for name, figures in candidates.items():
        against = dict(references)
        if zero_shot is not None and name != zero_shot:
            against["zero-shot base"] = candidates[zero_shot]
        if not against:
            raise GateInputError(f"candidate {name!r} has no reference to be compared with")
        decisions[name] = decide_promotion(figures, against, **gate_options)

    def mean(name: str) -> float:
        value = decisions[name].candidate_mean
        return -math.inf if value is None else value

    passing = [name for name, decision in decisions.items() if decision.promote]
    winner = max(passing, key=mean) if passing else None
    chosen = winner or max(decisions, key=mean)
    return RunDecision(decisions=decisions, winner=winner, chosen=chosen, decision=decisions[chosen])
