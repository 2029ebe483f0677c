"""Random reliability data for comparing against the reference implementations."""
from __future__ import annotations

import numpy as np


def random_matrix(seed: int, *, annotators: int, items: int, missing: float, scale=(0, 3),
                  noise: float = 0.4) -> np.ndarray:
    """annotators x items grades with NaN for missing: a true grade per item, each annotator off by
    a random step with probability `noise`, so agreement is neither perfect nor random."""
    rng = np.random.default_rng(seed)
    low, high = scale
    truth = rng.integers(low, high + 1, items)
    step = rng.choice([-2, -1, 1, 2], size=(annotators, items), p=[0.1, 0.4, 0.4, 0.1])
    noisy = rng.random((annotators, items)) < noise
    grades = np.clip(truth + np.where(noisy, step, 0), low, high).astype(float)
    grades[rng.random((annotators, items)) < missing] = np.nan
    return grades


def equal_judges_matrix(seed: int, *, annotators: int, items: int, judges: int, scale=(0, 3)) -> np.ndarray:
    """Every item graded by exactly `judges` of the annotators (the shape Fleiss' kappa needs)."""
    rng = np.random.default_rng(seed)
    full = random_matrix(seed, annotators=annotators, items=items, missing=0.0, scale=scale)
    keep = np.argsort(rng.random((items, annotators)), axis=1)[:, :judges]
    mask = np.zeros_like(full, dtype=bool)
    mask[keep.T, np.arange(items)] = True
    return np.where(mask, full, np.nan)
