"""Inter-annotator agreement for ordered grades on a fixed integer scale (default: annotate/grades.py).

    ratings = Ratings.from_arrays(candidate_ids, annotator_ids, grades)      # or Ratings.from_matrix
    result = compute_agreement(ratings, bootstrap=1000, seed=0)
    result.krippendorff_alpha_ordinal, result.alpha_ordinal_ci95, result.fleiss_kappa, ...

Pure statistics: ratings in, figures out; no Django, no database (annotate/quality/ reads a
collection's judgments into these inputs and keeps the reports). Pure numpy; no per-item Python loop
on the hot path. Modules: `ratings` (input and checks), `alpha` (Krippendorff's alpha and its
bootstrap), `kappa` (Fleiss, Cohen), `pairwise` (percent agreement, per-pair tables), `report`
(everything at once), `annotators` (per-annotator figures: consensus, gold, speed, drift, flags and
reliability), `ratings_csv` (the CSV form).
"""
from .alpha import (
    LEVELS,
    alpha_by_group,
    bootstrap_alpha,
    coincidence_matrix,
    krippendorff_alpha,
    value_counts,
)
from .kappa import cohen_kappas, fleiss_kappa
from .ratings import Ratings, RatingsError, Scale, parse_scale
from .report import AgreementResult, PairKappa, Support, compute_agreement

__all__ = [
    "LEVELS", "AgreementResult", "alpha_by_group", "PairKappa", "Ratings", "RatingsError", "Scale", "Support",
    "bootstrap_alpha", "coincidence_matrix", "cohen_kappas", "compute_agreement", "fleiss_kappa",
    "krippendorff_alpha", "parse_scale", "value_counts",
]
