"""The published worked examples of each coefficient, reproduced to the digits they are printed with."""
from __future__ import annotations

import numpy as np
import pytest

from annotate.agreement import (
    Ratings,
    compute_agreement,
    fleiss_kappa,
    krippendorff_alpha,
)

nan = np.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units,
# values 1-5, missing data. Also in the `krippendorff` package's own doctests (0.743 nominal, 0.815 ordinal).
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
]


@pytest.mark.parametrize("level,published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_2011_canonical_example(level, published):
    ratings = Ratings.from_matrix(KRIPPENDORFF_2011, scale=(1, 5))
    assert round(krippendorff_alpha(ratings, level), 3) == published


def test_krippendorff_2011_example_drops_the_unit_only_one_observer_coded():
    result = compute_agreement(Ratings.from_matrix(KRIPPENDORFF_2011, scale=(1, 5)), bootstrap=0)
    assert result.n_items == 12
    assert result.support["krippendorff_alpha"].n_items == 11  # unit 12 has a single value
    assert result.support["krippendorff_alpha"].n_judgments == 40  # the paper's n = 40 pairable values


# Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters,
# 5 categories; P_bar = 0.378, P_e = 0.213, kappa = 0.210. statsmodels' tests use the same table.
WIKIPEDIA_FLEISS = np.array([
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
])


def test_fleiss_kappa_wikipedia_worked_example():
    kappa, reason = fleiss_kappa(WIKIPEDIA_FLEISS)
    assert reason is None
    assert round(kappa, 3) == 0.210


def test_fleiss_kappa_wikipedia_example_as_judgments():
    """The same table as 140 judgments (the 14 raters need not be the same people per subject)."""
    subject, category = np.nonzero(WIKIPEDIA_FLEISS)
    repeats = WIKIPEDIA_FLEISS[subject, category]
    item = np.repeat(subject, repeats)
    grade = np.repeat(category + 1, repeats)
    rater = np.concatenate([np.arange(14)] * 10)  # position within the subject's row
    result = compute_agreement(Ratings.from_arrays(item, rater, grade, scale=(1, 5)), bootstrap=0)
    assert round(result.fleiss_kappa, 3) == 0.210
    assert result.support["fleiss_kappa"].n_judgments == 140


# Fleiss (1971), Table 1: 30 patients, 6 psychiatrists, 5 diagnoses; kappa = 0.430
# (R's irr::kappam.fleiss(diagnoses) prints 0.43 for the same data).
DIAGNOSES = np.array([
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
])


def test_fleiss_1971_psychiatric_diagnoses():
    result = compute_agreement(Ratings.from_matrix(DIAGNOSES.T, scale=(1, 5)), bootstrap=0)
    assert round(result.fleiss_kappa, 3) == 0.430


def cohen_pair(table: list[list[int]], labels) -> Ratings:
    """Two readers' grades from a confusion table (rows: reader A, columns: reader B)."""
    a, b = np.nonzero(np.asarray(table))
    repeats = np.asarray(table)[a, b]
    grade_a, grade_b = np.repeat(np.asarray(labels)[a], repeats), np.repeat(np.asarray(labels)[b], repeats)
    items = np.arange(grade_a.size)
    return Ratings.from_arrays(
        np.concatenate([items, items]), np.repeat(["A", "B"], grade_a.size),
        np.concatenate([grade_a, grade_b]), scale=(labels[0], labels[-1]),
    )


def test_cohen_kappa_wikipedia_grant_proposals():
    """Wikipedia "Cohen's kappa": 50 proposals, yes/yes 20, A yes B no 5, A no B yes 10, no/no 15:
    p_o = 0.7, p_e = 0.5, kappa = 0.4."""
    ratings = cohen_pair([[15, 10], [5, 20]], labels=[0, 1])  # 0 = no, 1 = yes
    (pair,) = compute_agreement(ratings, bootstrap=0).pairs
    assert pair.n_items == 50
    assert pair.percent_agreement == pytest.approx(0.7)
    assert pair.kappa == pytest.approx(0.4)


def test_cohen_kappa_sas_three_category_example_unweighted_and_linear():
    """The SAS PROC FREQ AGREE printout statsmodels checks against: 3x3 table [[0,4,1],[0,8,0],[0,1,5]],
    simple kappa 0.4842, weighted (linear, Cicchetti-Allison) kappa 0.4701."""
    ratings = cohen_pair([[0, 4, 1], [0, 8, 0], [0, 1, 5]], labels=[0, 1, 2])
    (pair,) = compute_agreement(ratings, bootstrap=0).pairs
    assert round(pair.kappa, 4) == 0.4842
    assert round(pair.kappa_linear, 4) == 0.4701
