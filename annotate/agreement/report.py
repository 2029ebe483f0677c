"""`compute_agreement`: every agreement statistic of a set of ratings, with what each rests on."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from django.utils.translation import gettext_noop

from .alpha import (
    LEVELS,
    alpha_with_reason,
    bootstrap_alpha,
    coincidence_matrix,
    pairable,
    value_counts,
)
from .kappa import WEIGHTS, cohen_kappas, fleiss_kappa
from .pairwise import pair_confusions, pairwise_agreement
from .ratings import Ratings, Scale, as_scale, plain_label


@dataclass(frozen=True)
class Support:
    """What a statistic was computed from."""

    n_items: int
    n_judgments: int
    n_pairs: int | None = None  # judgment pairs (percent agreement) or annotator pairs (Cohen)


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of one annotator pair over the items both judged (None where undefined)."""

    annotator_a: object
    annotator_b: object
    n_items: int
    kappa: float | None
    kappa_linear: float | None
    kappa_quadratic: float | None
    percent_agreement: float


@dataclass(frozen=True)
class AgreementResult:
    """All agreement figures of one set of ratings. None marks an undefined statistic; the reason
    is in `undefined`. `n_items` / `n_annotators` count those with at least one grade."""

    scale: Scale
    n_items: int
    n_annotators: int
    n_judgments: int
    krippendorff_alpha_nominal: float | None
    krippendorff_alpha_ordinal: float | None
    krippendorff_alpha_interval: float | None
    alpha_nominal_ci95: tuple[float, float] | None
    alpha_ordinal_ci95: tuple[float, float] | None
    alpha_interval_ci95: tuple[float, float] | None
    bootstrap_resamples: int
    fleiss_kappa: float | None
    percent_agreement: float | None
    within_one_agreement: float | None
    # Plain (unweighted) means over the annotator pairs whose kappa is defined: every pair counts
    # once however many items it shares, so a pair of prolific annotators does not hide the others.
    # `pairs` keeps each pair's n_items for a weighted view.
    cohen_kappa_mean: float | None
    cohen_kappa_linear_mean: float | None
    cohen_kappa_quadratic_mean: float | None
    pairs: list[PairKappa]
    support: dict[str, Support]
    undefined: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        """Plain JSON values (tuples as lists, NaN never appears: undefined is null)."""
        data = asdict(self)
        data["scale"] = str(self.scale)
        for name in ("alpha_nominal_ci95", "alpha_ordinal_ci95", "alpha_interval_ci95"):
            data[name] = list(data[name]) if data[name] is not None else None
        data["pairs"] = [{**pair, "annotator_a": plain_label(pair["annotator_a"]),
                          "annotator_b": plain_label(pair["annotator_b"])} for pair in data["pairs"]]
        return data


def compute_agreement(
    ratings: Ratings,
    *,
    scale: Scale | tuple[int, int] | str | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> AgreementResult:
    """Krippendorff's alpha (nominal, ordinal, interval) with bootstrap 95% intervals, Fleiss'
    kappa, Cohen's kappa per annotator pair (unweighted, linear, quadratic) and their means,
    and pairwise percent / within-one agreement.

    `scale` must match the ratings' scale if given (the grades were checked against it when the
    Ratings were built). `bootstrap` is the number of item resamples (0 skips the intervals).
    """
    if scale is not None and as_scale(scale) != ratings.scale:
        raise ValueError(f"ratings are on the scale {ratings.scale}, not {as_scale(scale)}")
    undefined: dict[str, str] = {}
    counts = value_counts(ratings)
    paired = pairable(counts)
    support = {"krippendorff_alpha": Support(len(paired), int(paired.sum()))}

    coincidences = coincidence_matrix(counts)
    alphas = {}
    for level in LEVELS:
        alphas[level], reason = alpha_with_reason(coincidences, level, ratings.scale)
        if reason:
            undefined[f"krippendorff_alpha_{level}"] = reason
    intervals = bootstrap_alpha(counts, ratings.scale, resamples=bootstrap, seed=seed) if bootstrap else {}
    for level in LEVELS:
        if intervals.get(level) is None and alphas[level] is not None:
            undefined[f"alpha_{level}_ci95"] = (gettext_noop("no bootstrap resamples") if not bootstrap
                                                else gettext_noop("alpha undefined in every resample"))

    fleiss, reason = fleiss_kappa(counts)
    if reason:
        undefined["fleiss_kappa"] = reason
    rated = counts[counts.sum(axis=1) > 0]
    support["fleiss_kappa"] = Support(len(rated), int(rated.sum())) if fleiss is not None else Support(0, 0)

    agreement = pairwise_agreement(counts)
    support["percent_agreement"] = Support(agreement.n_items, agreement.n_judgments, agreement.n_pairs)
    if agreement.percent_agreement is None:
        undefined["percent_agreement"] = undefined["within_one_agreement"] = gettext_noop("no item has two or more grades")

    pairs, means, cohen_support = _cohen(ratings)
    support["cohen_kappa"] = cohen_support
    for weights, name in zip(WEIGHTS, ("cohen_kappa_mean", "cohen_kappa_linear_mean", "cohen_kappa_quadratic_mean")):
        if means[weights] is None:
            undefined[name] = (gettext_noop("no two annotators judged a common item") if not pairs else gettext_noop(
                "kappa is undefined for every annotator pair (each gave one grade throughout)"))

    return AgreementResult(
        scale=ratings.scale,
        n_items=ratings.n_items,
        n_annotators=ratings.n_annotators,
        n_judgments=ratings.n_judgments,
        krippendorff_alpha_nominal=alphas["nominal"],
        krippendorff_alpha_ordinal=alphas["ordinal"],
        krippendorff_alpha_interval=alphas["interval"],
        alpha_nominal_ci95=intervals.get("nominal"),
        alpha_ordinal_ci95=intervals.get("ordinal"),
        alpha_interval_ci95=intervals.get("interval"),
        bootstrap_resamples=bootstrap,
        fleiss_kappa=fleiss,
        percent_agreement=agreement.percent_agreement,
        within_one_agreement=agreement.within_one_agreement,
        cohen_kappa_mean=means["none"],
        cohen_kappa_linear_mean=means["linear"],
        cohen_kappa_quadratic_mean=means["quadratic"],
        pairs=pairs,
        support=support,
        undefined=undefined,
    )


def _cohen(ratings: Ratings) -> tuple[list[PairKappa], dict[str, float | None], Support]:
    tables = pair_confusions(ratings)
    kappas = {weights: cohen_kappas(tables.confusions, weights) for weights in WEIGHTS}
    shared = tables.shared_items
    agreeing = np.trace(tables.confusions, axis1=1, axis2=2)
    labels = ratings.annotator_ids
    pairs = [
        PairKappa(
            annotator_a=labels[a], annotator_b=labels[b], n_items=int(n),
            kappa=_number(k0), kappa_linear=_number(k1), kappa_quadratic=_number(k2),
            percent_agreement=float(agree / n),
        )
        for a, b, n, k0, k1, k2, agree in zip(
            tables.first, tables.second, shared, kappas["none"], kappas["linear"], kappas["quadratic"], agreeing
        )
    ]
    means = {}
    for weights, values in kappas.items():
        defined = values[~np.isnan(values)]
        means[weights] = float(defined.mean()) if defined.size else None
    # The pairs are built from the items with two or more grades; n_pairs counts the annotator
    # pairs whose quadratic kappa (the headline figure) is defined.
    counts = np.bincount(ratings.item, minlength=ratings.n_items)
    paired = counts >= 2
    return pairs, means, Support(
        n_items=int(paired.sum()), n_judgments=int(counts[paired].sum()),
        n_pairs=int((~np.isnan(kappas["quadratic"])).sum()),
    )


def _number(value) -> float | None:
    return None if math.isnan(value) else float(value)


