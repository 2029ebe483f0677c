"""Read ratings from a CSV file with the header `item,annotator,grade` (an empty grade = missing).

The file is streamed row by row with the csv module; only three compact integer arrays grow.
Any problem raises RatingsFileError "<file>:<line>: <reason>" naming the first bad line.
"""
from __future__ import annotations

import csv
from array import array
from pathlib import Path

import numpy as np

from .ratings import Ratings, Scale

HEADER = ["item", "annotator", "grade"]
MISSING = -1


class RatingsFileError(ValueError):
    """A ratings file that cannot be read; the message is "<file>:<line>: <reason>"."""


def read_ratings_csv(path: str | Path, *, scale: Scale = Scale()) -> Ratings:
    return _read_csv(path, _read, scale)


def _read_csv(path: str | Path, read, scale: Scale):
    """Open `path` and hand a strict csv reader over its decoded lines to `read(reader, path,
    scale)`; a file that cannot be opened or is malformed CSV raises RatingsFileError."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise RatingsFileError(f"{path}: cannot open ({error.strerror or error})") from None
    with handle:
        reader = csv.reader(_decoded_lines(handle, path), strict=True)
        try:
            return read(reader, path, scale)
        except csv.Error as error:
            raise RatingsFileError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None


def _decoded_lines(handle, path: Path):
    """UTF-8 text line by line, so an undecodable byte is reported on its own line (a text-mode
    file decodes whole buffers ahead of the csv reader and would blame the wrong line)."""
    for number, raw in enumerate(handle, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a byte-order mark some spreadsheet programs write
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RatingsFileError(
                f"{path}:{number}: invalid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1})"
            ) from None


def _read(reader, path: Path, scale: Scale) -> Ratings:
    header = next(reader, None)
    if header is None:
        raise RatingsFileError(f"{path}:1: empty file; expected the header {','.join(HEADER)}")
    if [name.strip() for name in header] != HEADER:
        raise RatingsFileError(f"{path}:1: header is {','.join(header)!r}; expected exactly {','.join(HEADER)}")
    item_codes: dict[str, int] = {}
    annotator_codes: dict[str, int] = {}
    items, annotators, grades, lines = array("q"), array("q"), array("q"), array("q")
    for row in reader:
        line = reader.line_num
        if not row:
            continue  # a blank line carries no judgment
        if len(row) != 3:
            raise RatingsFileError(f"{path}:{line}: expected 3 columns (item,annotator,grade), got {len(row)}")
        item, annotator, grade_text = (value.strip() for value in row)
        if not item or not annotator:
            raise RatingsFileError(f"{path}:{line}: empty {'item' if not item else 'annotator'} id")
        items.append(item_codes.setdefault(item, len(item_codes)))
        annotators.append(annotator_codes.setdefault(annotator, len(annotator_codes)))
        grades.append(_grade(grade_text, scale, path, line))
        lines.append(line)
    return _ratings(items, annotators, grades, lines, item_codes, annotator_codes, scale, path)


def _grade(text: str, scale: Scale, path: Path, line: int) -> int:
    if text == "":
        return MISSING
    try:
        grade = int(text)
    except ValueError:
        raise RatingsFileError(f"{path}:{line}: grade {text!r} is not an integer") from None
    if not scale.low <= grade <= scale.high:
        raise RatingsFileError(f"{path}:{line}: grade {grade} is outside the scale {scale}")
    return grade


def _ratings(items, annotators, grades, lines, item_codes, annotator_codes, scale, path) -> Ratings:
    item = np.frombuffer(items, dtype=np.int64)
    annotator = np.frombuffer(annotators, dtype=np.int64)
    grade = np.frombuffer(grades, dtype=np.int64)
    line = np.frombuffer(lines, dtype=np.int64)
    _refuse_repeats(item, annotator, line, len(annotator_codes), item_codes, annotator_codes, path)
    present = grade != MISSING
    item_ids = np.array(list(item_codes), dtype=object)
    annotator_ids = np.array(list(annotator_codes), dtype=object)
    ratings = Ratings.from_arrays(item[present], annotator[present], grade[present], scale=scale)
    # from_arrays renumbered the codes; map its labels (our codes) back to the file's ids.
    return Ratings(ratings.item, ratings.annotator, ratings.grade, scale,
                   item_ids[ratings.item_ids], annotator_ids[ratings.annotator_ids])


def _refuse_repeats(item, annotator, line, n_annotators, item_codes, annotator_codes, path) -> None:
    """A repeated (item, annotator) pair, even with a missing grade, is refused at its second line."""
    if item.size == 0:
        return
    key = item * max(n_annotators, 1) + annotator
    order = np.argsort(key, kind="stable")  # equal keys keep file order
    repeat = np.flatnonzero(key[order][1:] == key[order][:-1])
    if repeat.size == 0:
        return
    second = order[repeat + 1]
    worst = second[np.argmin(line[second])]
    first = order[repeat[np.argmin(line[second])]]
    item_id = list(item_codes)[item[worst]]
    annotator_id = list(annotator_codes)[annotator[worst]]
    raise RatingsFileError(
        f"{path}:{line[worst]}: repeated (item, annotator) pair ({item_id!r}, {annotator_id!r}), "
        f"first given on line {line[first]}"
    )


GOLD_HEADER = ["item", "grade"]


def read_gold_csv(path: str | Path, *, scale: Scale = Scale()) -> dict[str, int]:
    """Reference grades from a CSV file with the header `item,grade`: {item id: grade on `scale`}.

    Every row needs a grade; an item given twice, a grade off the scale or not an integer, a missing
    header or an empty file raise RatingsFileError "<file>:<line>: <reason>".
    """
    return _read_csv(path, _read_gold, scale)


def _read_gold(reader, path: Path, scale: Scale) -> dict[str, int]:
    header = next(reader, None)
    if header is None:
        raise RatingsFileError(f"{path}:1: empty file; expected the header {','.join(GOLD_HEADER)}")
    if [name.strip() for name in header] != GOLD_HEADER:
        raise RatingsFileError(f"{path}:1: header is {','.join(header)!r}; expected exactly {','.join(GOLD_HEADER)}")
    grades: dict[str, int] = {}
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != 2:
            raise RatingsFileError(f"{path}:{line}: expected 2 columns (item,grade), got {len(row)}")
        item, grade_text = (value.strip() for value in row)
        if not item:
            raise RatingsFileError(f"{path}:{line}: empty item id")
        if grade_text == "":
            raise RatingsFileError(f"{path}:{line}: empty grade for item {item!r}")
        if item in grades:
            raise RatingsFileError(f"{path}:{line}: item {item!r} repeated, first given on line {first_line[item]}")
        grades[item] = _grade(grade_text, scale, path, line)
        first_line[item] = line
    if not grades:
        raise RatingsFileError(f"{path}:1: no reference grades after the header")
    return grades
