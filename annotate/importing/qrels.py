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

from django.utils.translation import gettext as _

from annotate.formats import FormatError, is_qrels_header, parse_qrel, qrels_columns

from .errors import ImportFileError
from .lines import ByteProgress, read_lines


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
        try:
            if columns is None:
                columns = qrels_columns(fields)
                if columns == 3 and is_qrels_header(fields):
                    continue
            query_id, doc_id, grade = parse_qrel(fields, columns)
        except FormatError as error:
            raise ImportFileError(path, line, str(error)) from None
        rows += 1
        yield QrelRow(line, query_id, doc_id, grade)
    if rows == 0:
        raise ImportFileError(path, None, _("empty file (a header and no rows)"))
