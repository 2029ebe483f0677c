"""Labelled seed data in the three interchange formats, told apart per line by their keys:

- pointwise `{"query", "doc", "label"}`
- pairwise  `{"query", "positive", "negative"}`  (positive/negative: one text or a list of texts)
- listwise  `{"query", "candidates": [{"doc", "label"?}, ...]}`  (a candidate without a label is
  proposed for judging but carries no grade)

Ids: a row may name its query and documents with `query_id` / `doc_id` (pairwise:
`positive_id` / `negative_id`), as the weighted listwise export does; then the text may be left
out if the id is already known (in the collection or earlier in the same import). Rows with text
only get stable ids from a hash of the text: "q-" / "d-" + the first 16 hex digits of its sha256,
so the same text always lands on the same query or document. Other keys (soft_label, weight,
n_judgments, sources, split, ...) are ignored.

Labels are integers within 0..3.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ImportFileError, RowError
from .lines import (
    ByteProgress,
    external_id,
    grade_from_json,
    json_type,
    read_json_objects,
    string_field,
)

FORMAT_HINT = (
    "expected pointwise {query, doc, label}, pairwise {query, positive, negative} "
    "or listwise {query, candidates}"
)


@dataclass(slots=True)
class LabeledDoc:
    doc_id: str
    text: str | None
    label: int | None = None
    role: str | None = None  # pairwise: "positive" or "negative"


@dataclass(slots=True)
class LabeledRow:
    line: int
    query_id: str
    query_text: str | None
    docs: list[LabeledDoc] = field(default_factory=list)


def text_id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"


def read_labels(path: Path, progress: ByteProgress | None = None) -> Iterator[LabeledRow]:
    for line, row in read_json_objects(path, progress):
        try:
            yield _parse(line, row)
        except RowError as error:
            raise ImportFileError(path, line, str(error)) from None


def _parse(line: int, row: dict) -> LabeledRow:
    if "candidates" in row:
        parse = _listwise
    elif any(key in row for key in ("positive", "negative", "positive_id", "negative_id")):
        parse = _pairwise
    elif any(key in row for key in ("doc", "doc_id", "label")):
        parse = _pointwise
    else:
        raise RowError(f"unknown row format: {FORMAT_HINT}")
    query_id, query_text = _named(row, "query", "query_id", "q")
    labeled = LabeledRow(line, query_id, query_text)
    parse(row, labeled)
    return labeled


def _named(row: dict, text_key: str, id_key: str, prefix: str, where: str = "") -> tuple[str, str | None]:
    """(id, text or None) from a text field and/or an id field; at least one must be there."""
    text = row.get(text_key)
    if text is not None and not isinstance(text, str):
        raise RowError(f"'{where}{text_key}' must be a string, got {json_type(text)}")
    if row.get(id_key) is not None:
        return external_id(row[id_key], f"{where}{id_key}"), text
    if text is None:
        raise RowError(f"missing field '{where}{text_key}'")
    return text_id(prefix, text), text


def _pointwise(row: dict, labeled: LabeledRow) -> None:
    doc_id, doc_text = _named(row, "doc", "doc_id", "d")
    if "label" not in row:
        raise RowError("missing field 'label'")
    labeled.docs.append(LabeledDoc(doc_id, doc_text, label=grade_from_json(row["label"], "label")))


def _pairwise(row: dict, labeled: LabeledRow) -> None:
    for role in ("positive", "negative"):
        id_key = f"{role}_id"
        if row.get(id_key) is not None:
            text = string_field(row, role, required=False, allow_null=True)
            labeled.docs.append(LabeledDoc(external_id(row[id_key], id_key), text, role=role))
            continue
        if role not in row:
            raise RowError(f"missing field '{role}'")
        value = row[role]
        texts = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            raise RowError(f"'{role}' is an empty list")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                where = f"{role}[{index}]" if isinstance(value, list) else role
                raise RowError(f"'{where}' must be a string, got {json_type(text)}")
            labeled.docs.append(LabeledDoc(text_id("d", text), text, role=role))


def _listwise(row: dict, labeled: LabeledRow) -> None:
    candidates = row["candidates"]
    if not isinstance(candidates, list):
        raise RowError(f"'candidates' must be an array, got {json_type(candidates)}")
    for index, candidate in enumerate(candidates):
        where = f"candidates[{index}]."
        if not isinstance(candidate, dict):
            raise RowError(f"'candidates[{index}]' must be an object, got {json_type(candidate)}")
        doc_id, doc_text = _named(candidate, "doc", "doc_id", "d", where)
        label = candidate.get("label")
        label = None if label is None else grade_from_json(label, f"{where}label")
        labeled.docs.append(LabeledDoc(doc_id, doc_text, label=label))
