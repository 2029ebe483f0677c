"""Ratings: who gave which grade to which item, as three parallel integer arrays.

This is the shape Judgment rows come in (candidate, annotator, grade), so the database, a CSV
file and a dense matrix all reduce to it without a per-row Python object on the hot path.
Items and annotators are renumbered 0..n-1 (dense codes); their original ids are kept as labels.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..grades import GRADE_MAX, GRADE_MIN


class RatingsError(ValueError):
    """The ratings break a rule: a grade off the scale, a repeated (item, annotator) pair..."""


@dataclass(frozen=True)
class Scale:
    """A fixed ordinal integer scale low..high (both included); by default the relevance grades."""

    low: int = GRADE_MIN
    high: int = GRADE_MAX

    def __post_init__(self):
        if int(self.low) != self.low or int(self.high) != self.high:
            raise RatingsError(f"scale bounds must be integers, got {self.low}-{self.high}")
        if self.low >= self.high:
            raise RatingsError(f"scale {self.low}-{self.high}: the lowest grade must be below the highest")

    @property
    def values(self) -> np.ndarray:
        return np.arange(self.low, self.high + 1)

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


_SCALE_TEXT = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def parse_scale(text: str) -> Scale:
    """`"0-3"` or `"1-5"` -> Scale; anything else (`"3-0"`, `"a-b"`, `"2"`) raises RatingsError."""
    match = _SCALE_TEXT.match(text or "")
    if not match:
        raise RatingsError(f"scale {text!r} is not MIN-MAX with non-negative integers, e.g. 0-3 or 1-5")
    return Scale(int(match.group(1)), int(match.group(2)))


def as_scale(scale: Scale | tuple[int, int] | str) -> Scale:
    if isinstance(scale, Scale):
        return scale
    if isinstance(scale, str):
        return parse_scale(scale)
    low, high = scale
    return Scale(low, high)


@dataclass(frozen=True, eq=False)
class Ratings:
    """Non-missing judgments: `item[j]` got `grade[j]` from `annotator[j]`.

    `item` and `annotator` are dense codes (0..n_items-1, 0..n_annotators-1), `grade` is on
    `scale`. Every code has at least one judgment; no (item, annotator) pair repeats.
    Build with `from_arrays` or `from_matrix`, which check all of that.
    """

    item: np.ndarray
    annotator: np.ndarray
    grade: np.ndarray
    scale: Scale
    item_ids: np.ndarray = field(repr=False)
    annotator_ids: np.ndarray = field(repr=False)

    @property
    def n_judgments(self) -> int:
        return int(self.grade.size)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    @property
    def n_annotators(self) -> int:
        return int(self.annotator_ids.size)

    @classmethod
    def from_arrays(
        cls,
        item: Sequence | np.ndarray,
        annotator: Sequence | np.ndarray,
        grade: Sequence | np.ndarray,
        *,
        scale: Scale | tuple[int, int] | str = (GRADE_MIN, GRADE_MAX),
    ) -> Ratings:
        """Triples of (item id, annotator id, grade); a NaN grade is a missing judgment and dropped.

        Ids may be any integers or strings (database ids, external ids); they are kept as labels.
        """
        scale = as_scale(scale)
        item, annotator = np.asarray(item), np.asarray(annotator)
        grade = np.asarray(grade)
        if not (item.ndim == annotator.ndim == grade.ndim == 1) or not (item.size == annotator.size == grade.size):
            raise RatingsError(
                f"item, annotator and grade must be 1-d arrays of one length, got shapes "
                f"{item.shape}, {annotator.shape}, {grade.shape}"
            )
        grade = _checked_grades(grade, scale)
        if grade.mask is not None:
            item, annotator = item[grade.mask], annotator[grade.mask]
        item_codes, item_ids = _factorize(item)
        annotator_codes, annotator_ids = _factorize(annotator)
        _refuse_repeated_pairs(item_codes, annotator_codes, item_ids, annotator_ids)
        return cls(item_codes, annotator_codes, grade.values, scale, item_ids, annotator_ids)

    @classmethod
    def from_matrix(cls, matrix, *, scale: Scale | tuple[int, int] | str = (GRADE_MIN, GRADE_MAX)) -> Ratings:
        """A reliability-data matrix as `krippendorff.alpha` takes it: one row per annotator, one
        column per item, NaN where the annotator did not judge the item. Labels are row/column numbers."""
        matrix = np.asarray(matrix, dtype=float)
        if matrix.ndim != 2:
            raise RatingsError(f"the matrix must be 2-d (annotators x items), got shape {matrix.shape}")
        annotator, item = np.nonzero(~np.isnan(matrix))
        return cls.from_arrays(item, annotator, matrix[annotator, item], scale=scale)

    def reliability_matrix(self) -> np.ndarray:
        """The dense annotators x items matrix with NaN for missing (for reference implementations)."""
        matrix = np.full((self.n_annotators, self.n_items), np.nan)
        matrix[self.annotator, self.item] = self.grade
        return matrix


@dataclass
class _Grades:
    values: np.ndarray
    mask: np.ndarray | None  # which input rows were kept; None = all


def _checked_grades(grade: np.ndarray, scale: Scale) -> _Grades:
    mask = None
    if grade.dtype.kind == "f":
        present = ~np.isnan(grade)
        if not present.all():
            mask, grade = present, grade[present]
        whole = grade == np.round(grade)
        if not whole.all():
            raise RatingsError(f"grade {grade[~whole][0]!r} is not an integer")
    elif grade.dtype.kind not in "iu" and grade.size:
        raise RatingsError(f"grades must be numbers, got dtype {grade.dtype}")
    grade = grade.astype(np.int64)
    outside = (grade < scale.low) | (grade > scale.high)
    if outside.any():
        raise RatingsError(f"grade {grade[outside][0]} is outside the scale {scale}")
    return _Grades(grade, mask)


def _factorize(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes 0..k-1 and the sorted distinct ids. Small non-negative integer ids (database
    primary keys, positions) take a bincount path that avoids sorting a million values."""
    if ids.dtype.kind in "iu" and ids.size and ids.min() >= 0 and ids.max() < 4 * ids.size + 1024:
        present = np.bincount(ids) > 0
        codes_of = np.cumsum(present) - 1
        return codes_of[ids].astype(np.int64), np.flatnonzero(present)
    distinct, codes = np.unique(ids, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), distinct


def _refuse_repeated_pairs(item, annotator, item_ids, annotator_ids) -> None:
    if item.size == 0:
        return
    key = item * np.int64(annotator_ids.size) + annotator
    n_keys = item_ids.size * annotator_ids.size
    if n_keys <= 16 * key.size:  # few cells per judgment: counting beats sorting
        repeated_keys = np.flatnonzero(np.bincount(key, minlength=n_keys) > 1)
    else:
        key.sort()
        repeated_keys = key[1:][key[1:] == key[:-1]]
    if repeated_keys.size:
        first = repeated_keys[0]
        item_id, annotator_id = item_ids[first // annotator_ids.size], annotator_ids[first % annotator_ids.size]
        raise RatingsError(
            f"item {plain_label(item_id)!r} has more than one grade from annotator {plain_label(annotator_id)!r}"
        )


def plain_label(label):
    """A numpy scalar as the Python value it holds (so messages and JSON show 'q1', not np.str_('q1'))."""
    return label.item() if isinstance(label, np.generic) else label
