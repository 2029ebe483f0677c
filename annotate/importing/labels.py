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

Labels are integers within 0..3. Each row is parsed by annotate.formats (JudgmentRules); this
module gives it its ids and its line.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from annotate.formats import FormatError, JudgmentRules, text_id

from .errors import ImportFileError
from .lines import ByteProgress, read_json_objects

RULES = JudgmentRules()


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


def read_labels(path: Path, progress: ByteProgress | None = None) -> Iterator[LabeledRow]:
    for line, row in read_json_objects(path, progress):
        try:
            yield _parse(line, row)
        except FormatError as error:
            raise ImportFileError(path, line, str(error)) from None


def _parse(line: int, row: dict) -> LabeledRow:
    """The row parsed by annotate.formats; a text named without an id gets the id of its text."""
    seed = RULES.parse(row, RULES.format_of(row))
    labeled = LabeledRow(line, seed.query_id or text_id("q", seed.query), seed.query)
    for doc in seed.docs:
        labeled.docs.append(LabeledDoc(doc.doc_id or text_id("d", doc.text), doc.text, label=doc.label, role=doc.role))
    return labeled
