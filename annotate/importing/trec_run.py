"""TREC runs: `qid Q0 docid rank score tag`, whitespace-separated, six columns per row.

The second column is conventionally `Q0` and is ignored. Rank is a non-negative integer, score a
finite number; the tag names the system, and each tag becomes the candidate source `run:<tag>`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from annotate.formats import FormatError, parse_run_line

from .errors import ImportFileError
from .lines import ByteProgress, read_lines


@dataclass(slots=True)
class RunRow:
    line: int
    query_id: str
    doc_id: str
    rank: int
    score: float
    tag: str


def read_run(path: Path, progress: ByteProgress | None = None) -> Iterator[RunRow]:
    for line, text in read_lines(path, progress):
        try:
            query_id, doc_id, rank, score, tag = parse_run_line(text.split())
        except FormatError as error:
            raise ImportFileError(path, line, str(error)) from None
        yield RunRow(line, query_id, doc_id, rank, score, tag)
