"""Training data files: JSON lines in a seed format -> query groups (batching is training.batching).

Three file formats are read, each record parsed by annotate.formats (ExampleRules); the format is
recognised from the first record and every line must follow it:

- listwise, one line per query: ``{"query", "candidates": [{"doc", "label"}]}``, optionally the
  export's ``query_id``, ``split`` and, per candidate, ``doc_id``, ``weight`` and the training
  targets below;
- pointwise, one line per pair: ``{"query", "doc", "label"}`` (+ ``query_id``, ``weight``, the
  training targets below); lines are grouped by query;
- pairwise, one line per preference: ``{"query", "positive", "negative"}`` (+ ``weight``). Pairs
  carry no grades, so each document gets ``3 * wins / (wins + losses)`` over the query's pairs:
  3 if it only ever won, 0 if it only ever lost, in between for a document that did both.

Labels are grades in [0, 3] (fractional aggregated grades are fine); a candidate's weight is the
export's confidence in [0, 1] (default 1). The export's training targets, each optional:
``soft_label`` (expected grade / 3, in [0, 1]; default label / 3), ``grade_probs`` (four numbers,
the posterior over grades 0..3, non-negative, summing to 1 within the export's rounding; null =
absent) and ``retrieval_rank`` (the best rank among the candidate's retrieval sources, a positive
integer; null = absent, none ranked it). The importer ignores them, so they are read here rather than by
annotate.formats. A bad line stops reading with ``file:line: reason``.
"""

from __future__ import annotations

import hashlib
import json
import math
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
N_GRADES = GRADE_MAX + 1
# How far grade_probs may sum from 1. The export rounds each probability to 6 digits, so four of
# them can sum up to 2e-6 away from 1 (a real export wrote 0.0 + 0.000133 + 0.936175 + 0.063693).
PROBS_TOLERANCE = 1e-5


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
    # The export's training targets per candidate; None (the whole list, or one entry of the
    # last two) = not given: see soft_label(), probs(), retrieval_rank().
    soft_labels: list[float] | None = None
    grade_probs: list[tuple[float, ...] | None] | None = None
    retrieval_ranks: list[int | None] | None = None

    def __len__(self) -> int:
        return len(self.docs)

    def soft_label(self, index: int) -> float:
        """The candidate's soft label: the file's, else its label / 3."""
        if self.soft_labels is None:
            return self.labels[index] / GRADE_MAX
        return self.soft_labels[index]

    def probs(self, index: int) -> tuple[float, ...] | None:
        """The candidate's posterior over grades 0..3, or None when the file gives none."""
        return None if self.grade_probs is None else self.grade_probs[index]

    def retrieval_rank(self, index: int) -> int | None:
        """The candidate's best retrieval rank (1 = top), or None when no source ranked it."""
        return None if self.retrieval_ranks is None else self.retrieval_ranks[index]


def groups_from_rows(rows, *, max_queries: int, max_candidates: int) -> list[QueryGroup]:
    """Query groups from database rows ``(query id, query text, document id, title, text, label)``
    ordered by query: at most ``max_queries`` queries of at most ``max_candidates`` candidates each
    (the first in row order); queries left with fewer than two candidates are dropped."""
    groups: list[QueryGroup] = []
    current = None
    for query_id, query_text, document_id, title, text, label in rows:
        if current is None or current.query_id != str(query_id):
            if len(groups) >= max_queries:
                break
            current = QueryGroup(query_id=str(query_id), query=query_text)
            groups.append(current)
        if len(current) < max_candidates:
            current.doc_ids.append(str(document_id))
            current.docs.append(f"{title}\n{text}" if title else text)
            current.labels.append(float(label))
            current.weights.append(1.0)
    return [group for group in groups if len(group) >= 2]


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
            ) -> Iterator[tuple[int, dict, SeedRecord]]:
    """Each record, as written and parsed, lazily: a bad line is reported in file order with the
    grouping's own faults. ``before_docs(number, record)``: the grouping's check of a record's query."""
    for number, record in records:
        check = None if before_docs is None else partial(before_docs, number)
        try:
            yield number, record, RULES.parse(record, file_format, before_docs=check)
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

    for number, written, record in _parsed(path, records, LISTWISE, first_time):
        query_id = _query_id(record)
        group = QueryGroup(query_id=query_id, query=record.query, split=record.split)
        seen_ids: set[str] = set()
        for index, doc in enumerate(record.docs):
            doc_id = doc.doc_id if doc.doc_id is not None else f"#{index}"
            if doc_id in seen_ids:
                raise DataFileError(f"{path}:{number}: candidate {index}: doc_id {doc_id!r} appears twice in the query")
            seen_ids.add(doc_id)
            _add(group, doc_id, doc, _targets(path, number, written["candidates"][index], f"candidate {index}: "))
        groups.append(group)
    return groups


def _pointwise(path: Path, records: list[tuple[int, dict]]) -> list[QueryGroup]:
    by_query: dict[str, QueryGroup] = {}
    for number, written, record in _parsed(path, records, POINTWISE):
        query_id = _query_id(record)
        group = by_query.setdefault(query_id, QueryGroup(query_id=query_id, query=record.query))
        doc = record.docs[0]
        _add(group, doc.doc_id if doc.doc_id is not None else f"#{len(group.docs)}", doc,
             _targets(path, number, written))
    return list(by_query.values())


def _pairwise(path: Path, records: list[tuple[int, dict]]) -> list[QueryGroup]:
    # per query: doc text -> [wins, losses, weight sum, appearances]
    tallies: dict[str, dict[str, list[float]]] = {}
    for _, _, record in _parsed(path, records, PAIRWISE):
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


def _add(group: QueryGroup, doc_id: str, doc: SeedDoc, targets: tuple) -> None:
    soft_label, probs, rank = targets
    if group.soft_labels is None:
        group.soft_labels, group.grade_probs, group.retrieval_ranks = [], [], []
    group.doc_ids.append(doc_id)
    group.docs.append(doc.text)
    group.labels.append(doc.label)
    group.weights.append(doc.weight)
    group.soft_labels.append(doc.label / GRADE_MAX if soft_label is None else soft_label)
    group.grade_probs.append(probs)
    group.retrieval_ranks.append(rank)


def _targets(path: Path, number: int, candidate: dict, what: str = "") -> tuple:
    """(soft_label, grade_probs, retrieval_rank) of one candidate, each None when not given."""
    try:
        return _soft_label(candidate, what), _grade_probs(candidate, what), _retrieval_rank(candidate, what)
    except FormatError as error:
        raise DataFileError(f"{path}:{number}: {error}") from None


def _soft_label(candidate: dict, what: str) -> float | None:
    if "soft_label" not in candidate:
        return None
    value = candidate["soft_label"]
    if not _is_number(value) or not 0 <= value <= 1:
        raise FormatError(f"{what}'soft_label' must be a number in [0, 1], got {value!r}")
    return float(value)


def _grade_probs(candidate: dict, what: str) -> tuple[float, ...] | None:
    value = candidate.get("grade_probs")
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != N_GRADES
            or not all(_is_number(p) and p >= 0 for p in value) or abs(sum(value) - 1) > PROBS_TOLERANCE):
        raise FormatError(f"{what}'grade_probs' must be {N_GRADES} non-negative numbers summing to 1, "
                          f"one per grade 0..{GRADE_MAX}, got {value!r}")
    total = sum(value)
    return tuple(float(p) / total for p in value)


def _retrieval_rank(candidate: dict, what: str) -> int | None:
    value = candidate.get("retrieval_rank")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FormatError(f"{what}'retrieval_rank' must be a positive integer (1 = top) or null, got {value!r}")
    return value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
