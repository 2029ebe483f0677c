"""Training data files: JSON lines in a seed format -> query groups (batching is training.batching).

Three file formats are read, each record parsed by annotate.formats (ExampleRules); the format is
recognised from the first record and every line must follow it:

- listwise, one line per query: ``{"query", "candidates": [{"doc", "label"}]}``, optionally the
  export's ``query_id``, ``split`` and, per candidate, ``doc_id``, ``soft_label``, ``weight``;
- pointwise, one line per pair: ``{"query", "doc", "label"}`` (+ ``query_id``, ``weight``);
  lines are grouped by query;
- pairwise, one line per preference: ``{"query", "positive", "negative"}`` (+ ``weight``). Pairs
  carry no grades, so each document gets ``3 * wins / (wins + losses)`` over the query's pairs:
  3 if it only ever won, 0 if it only ever lost, in between for a document that did both.

Labels are grades in [0, 3] (fractional aggregated grades are fine); a candidate's weight is the
export's confidence in [0, 1] (default 1). A bad line stops reading with ``file:line: reason``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from annotate.formats import (
    LISTWISE,
    PAIRWISE,
    POINTWISE,
    ExampleRules,
    FormatError,
    SeedDoc,
    SeedRecord,
)
from annotate.grades import GRADE_MAX

RULES = ExampleRules()


class DataFileError(ValueError):
    """A training or evaluation file that cannot be read; the message is ``file:line: reason``."""


@dataclass
class QueryGroup:
    """One query with its judged candidates, in file order."""

    query_id: str
    query: str
    doc_ids: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    split: str | None = None

    def __len__(self) -> int:
        return len(self.docs)


@dataclass
class DataFile:
    path: Path
    format: str
    groups: list[QueryGroup]
    sha256: str

    @property
    def n_pairs(self) -> int:
        return sum(len(group) for group in self.groups)

    def summary(self) -> dict:
        return {"path": str(self.path), "format": self.format, "sha256": self.sha256,
                "queries": len(self.groups), "pairs": self.n_pairs}


def read_data_file(path: str | Path) -> DataFile:
    """Read a listwise, pointwise or pairwise JSONL file into query groups."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    digest = hashlib.sha256()
    records: list[tuple[int, dict]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            digest.update(raw)
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DataFileError(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise DataFileError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            records.append((number, record))
    if not records:
        raise DataFileError(f"{path}:1: the file holds no records")
    try:
        file_format = RULES.format_of(records[0][1])
    except FormatError as error:
        raise DataFileError(f"{path}:{records[0][0]}: {error}") from None
    group = {LISTWISE: _listwise, POINTWISE: _pointwise, PAIRWISE: _pairwise}[file_format]
    return DataFile(path=path, format=file_format, groups=group(path, records), sha256=digest.hexdigest())


def _parsed(path: Path, records: list[tuple[int, dict]], file_format: str, before_docs=None
            ) -> Iterator[tuple[int, SeedRecord]]:
    """Each record parsed, lazily: a bad line is reported in file order with the grouping's own
    faults. ``before_docs(number, record)``: the grouping's check of a record's query."""
    for number, record in records:
        check = None if before_docs is None else partial(before_docs, number)
        try:
            yield number, RULES.parse(record, file_format, before_docs=check)
        except FormatError as error:
            raise DataFileError(f"{path}:{number}: {error}") from None


def _query_id(record: SeedRecord) -> str:
    return record.query_id if record.query_id is not None else record.query


def _listwise(path: Path, records: list[tuple[int, dict]]) -> list[QueryGroup]:
    groups: list[QueryGroup] = []
    first_line: dict[str, int] = {}

    def first_time(number: int, record: SeedRecord) -> None:
        query_id = _query_id(record)
        if query_id in first_line:
            raise DataFileError(f"{path}:{number}: query {query_id!r} repeats line {first_line[query_id]}")
        first_line[query_id] = number

    for number, record in _parsed(path, records, LISTWISE, first_time):
        query_id = _query_id(record)
        group = QueryGroup(query_id=query_id, query=record.query, split=record.split)
        seen_ids: set[str] = set()
        for index, doc in enumerate(record.docs):
            doc_id = doc.doc_id if doc.doc_id is not None else f"#{index}"
            if doc_id in seen_ids:
                raise DataFileError(f"{path}:{number}: candidate {index}: doc_id {doc_id!r} appears twice in the query")
            seen_ids.add(doc_id)
            _add(group, doc_id, doc)
        groups.append(group)
    return groups


def _pointwise(path: Path, records: list[tuple[int, dict]]) -> list[QueryGroup]:
    by_query: dict[str, QueryGroup] = {}
    for _, record in _parsed(path, records, POINTWISE):
        query_id = _query_id(record)
        group = by_query.setdefault(query_id, QueryGroup(query_id=query_id, query=record.query))
        doc = record.docs[0]
        _add(group, doc.doc_id if doc.doc_id is not None else f"#{len(group.docs)}", doc)
    return list(by_query.values())


def _pairwise(path: Path, records: list[tuple[int, dict]]) -> list[QueryGroup]:
    # per query: doc text -> [wins, losses, weight sum, appearances]
    tallies: dict[str, dict[str, list[float]]] = {}
    for _, record in _parsed(path, records, PAIRWISE):
        docs = tallies.setdefault(record.query, {})
        for doc in record.docs:
            tally = docs.setdefault(doc.text, [0.0, 0.0, 0.0, 0.0])
            tally[0 if doc.role == "positive" else 1] += 1
            tally[2] += doc.weight
            tally[3] += 1
    groups = []
    for query, docs in tallies.items():
        group = QueryGroup(query_id=query, query=query)
        for index, (doc, (wins, losses, weight_sum, seen)) in enumerate(docs.items()):
            group.doc_ids.append(f"#{index}")
            group.docs.append(doc)
            group.labels.append(GRADE_MAX * wins / (wins + losses))
            group.weights.append(weight_sum / seen)
        groups.append(group)
    return groups


def _add(group: QueryGroup, doc_id: str, doc: SeedDoc) -> None:
    group.doc_ids.append(doc_id)
    group.docs.append(doc.text)
    group.labels.append(doc.label)
    group.weights.append(doc.weight)
