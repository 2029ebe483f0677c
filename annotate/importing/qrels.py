"""Graded relevance judgments: BEIR TSV or TREC qrels, told apart by the first line.

- BEIR: a header `query-id corpus-id score`, then `qid docid grade` rows (three columns).
  A three-column file without the header is read the same way.
- TREC: `qid iteration docid grade` rows (four columns, the iteration column is ignored).

Columns are separated by tabs or spaces. Every row must have the column count of the first;
grades are integers within 0..3.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ImportFileError, RowError
from .lines import ByteProgress, grade_from_token, read_lines

BEIR_HEADER = ("query-id", "corpus-id", "score")


@dataclass(slots=True)
class QrelRow:
    line: int
    query_id: str
    doc_id: str
    grade: int


def read_qrels(path: Path, progress: ByteProgress | None = None) -> Iterator[QrelRow]:
    columns = None
    rows = 0
    for line, text in read_lines(path, progress):
        fields = text.split()
        if columns is None:
            columns = _detect(path, line, fields)
            if columns == 3 and _is_header(fields):
                continue
        if len(fields) != columns:
            layout = "query-id corpus-id score" if columns == 3 else "qid iteration docid grade"
            raise ImportFileError(path, line, f"expected {columns} columns ({layout}), got {len(fields)}")
        query_id, doc_id, grade = (fields[0], fields[1], fields[2]) if columns == 3 else (fields[0], fields[2], fields[3])
        try:
            grade = grade_from_token(grade, "grade")
        except RowError as error:
            raise ImportFileError(path, line, str(error)) from None
        rows += 1
        yield QrelRow(line, query_id, doc_id, grade)
    if rows == 0:
        raise ImportFileError(path, None, "empty file (a header and no rows)")


def _is_header(fields: list[str]) -> bool:
    return len(fields) == 3 and not _is_int(fields[2])


def _detect(path: Path, line: int, fields: list[str]) -> int:
    if len(fields) == 4:
        return 4
    if len(fields) == 3:
        if _is_int(fields[2]):
            return 3
        if tuple(f.lower() for f in fields) == BEIR_HEADER:
            return 3
        raise ImportFileError(
            path, line, f"bad header: expected 'query-id corpus-id score', got '{' '.join(fields)}'"
        )
    raise ImportFileError(
        path, line,
        f"unrecognised qrels: expected a BEIR header 'query-id corpus-id score' or TREC rows "
        f"'qid 0 docid grade', got {len(fields)} columns",
    )


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True
