"""TREC runs: `qid Q0 docid rank score tag`, whitespace-separated, six columns per row.

The second column is conventionally `Q0` and is ignored. Rank is a non-negative integer, score a
finite number; the tag names the system, and each tag becomes the candidate source `run:<tag>`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ImportFileError, RowError
from .lines import ByteProgress, finite_float, read_lines


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
        fields = text.split()
        if len(fields) != 6:
            raise ImportFileError(path, line, f"expected 6 columns (qid Q0 docid rank score tag), got {len(fields)}")
        query_id, _, doc_id, rank, score, tag = fields
        try:
            rank = int(rank)
        except ValueError:
            raise ImportFileError(path, line, f"rank '{rank}' is not an integer") from None
        if rank < 0:
            raise ImportFileError(path, line, f"rank {rank} is negative")
        try:
            score = finite_float(score, "score")
        except RowError as error:
            raise ImportFileError(path, line, str(error)) from None
        yield RunRow(line, query_id, doc_id, rank, score, tag)
