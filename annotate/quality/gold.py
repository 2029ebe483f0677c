"""Gold candidates: pairs with a grade staff vouch for, mixed into tasks to score annotators.

Staff mark a candidate gold with a grade (admin action, API, or `import_gold COLLECTION F`), or
unmark it. Mixing gold into tasks is annotate/judging/assignment.py's job (at Collection.gold_rate);
scoring it is annotate/agreement/annotators.py's (gold accuracy with partial credit).

Import files name pairs by external ids:
- CSV with the header `query_id,doc_id,grade` (BEIR names `query-id,corpus-id,score` accepted too);
- JSONL, one object per line: {"query_id": ..., "doc_id": ..., "grade": 0..3}.
The whole file is checked before anything is written; the first problem is a GoldFileError
"<file>:<line>: <reason>" and nothing changes.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils.translation import gettext as _

from ..grades import GRADE_MAX, GRADE_MIN
from ..models import Candidate, Collection

CSV_HEADERS = (["query_id", "doc_id", "grade"], ["query-id", "corpus-id", "score"])


class GoldError(ValueError):
    """A gold mark that cannot be made; the message names the problem."""


class GoldFileError(GoldError):
    """A gold file that cannot be imported; the message is "<file>:<line>: <reason>"."""


def _checked_grade(grade) -> int:
    if isinstance(grade, bool) or not isinstance(grade, int) or not GRADE_MIN <= grade <= GRADE_MAX:
        raise GoldError(_("gold grade must be an integer %(low)d..%(high)d, got %(value)s")
                        % {"low": GRADE_MIN, "high": GRADE_MAX, "value": repr(grade)})
    return grade


@transaction.atomic
def mark_gold(*, candidates, grade: int) -> int:
    """Mark these candidates gold with `grade`; returns how many changed."""
    grade = _checked_grade(grade)
    chosen = Candidate.objects.filter(pk__in=[c.pk if isinstance(c, Candidate) else c for c in candidates])
    _order_moves(chosen)
    return chosen.update(is_gold=True, gold_grade=grade)


@transaction.atomic
def unmark_gold(*, candidates) -> int:
    chosen = Candidate.objects.filter(pk__in=[c.pk if isinstance(c, Candidate) else c for c in candidates])
    _order_moves(chosen)
    return chosen.update(is_gold=False, gold_grade=None)


def _order_moves(candidates) -> None:
    """Gold pairs are outside the overlap k and the judging order: their queries' order is stale."""
    from ..judging.priorities import mark_stale

    mark_stale(query_ids=set(candidates.values_list("query_id", flat=True)))


@dataclass(frozen=True)
class GoldRow:
    line: int
    query_id: str
    doc_id: str
    grade: int


@dataclass(frozen=True)
class GoldImport:
    marked: int
    lines: int

    def as_json(self) -> dict:
        return {"marked": self.marked, "lines": self.lines}


def read_gold_file(path: str | Path) -> list[GoldRow]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise GoldFileError(f"{path}: cannot open ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise GoldFileError(f"{path}:{line}: invalid UTF-8") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.lstrip().startswith("{"):
        return _jsonl(path, text)
    return _csv(path, text)


def _grade(path: Path, line: int, value) -> int:
    if isinstance(value, str):
        value = value.strip()
        try:
            value = int(value)
        except ValueError:
            raise GoldFileError(f"{path}:{line}: grade {value!r} is not an integer") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise GoldFileError(f"{path}:{line}: grade {value!r} is not an integer")
    if not GRADE_MIN <= value <= GRADE_MAX:
        raise GoldFileError(f"{path}:{line}: grade {value} is outside {GRADE_MIN}..{GRADE_MAX}")
    return value


def _jsonl(path: Path, text: str) -> list[GoldRow]:
    rows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            raise GoldFileError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise GoldFileError(f"{path}:{number}: expected an object with query_id, doc_id and grade")
        for key in ("query_id", "doc_id", "grade"):
            if key not in record:
                raise GoldFileError(f"{path}:{number}: missing {key!r}")
        rows.append(GoldRow(number, _id(path, number, record["query_id"], "query_id"),
                            _id(path, number, record["doc_id"], "doc_id"), _grade(path, number, record["grade"])))
    return rows


def _id(path: Path, line: int, value, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise GoldFileError(f"{path}:{line}: {name} must be a non-empty string")
    return str(value).strip()


def _csv(path: Path, text: str) -> list[GoldRow]:
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise GoldFileError(f"{path}:1: empty file; expected the header query_id,doc_id,grade")
    if [name.strip() for name in header] not in CSV_HEADERS:
        raise GoldFileError(f"{path}:1: header is {','.join(header)!r}; expected query_id,doc_id,grade")
    rows = []
    for row in reader:
        number = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != 3:
            raise GoldFileError(f"{path}:{number}: expected 3 columns (query_id,doc_id,grade), got {len(row)}")
        rows.append(GoldRow(number, _id(path, number, row[0], "query_id"), _id(path, number, row[1], "doc_id"),
                            _grade(path, number, row[2])))
    return rows


@transaction.atomic
def import_gold(*, collection: Collection, path: str | Path) -> GoldImport:
    """Mark the file's pairs gold with their grades; every pair must be a candidate of the collection."""
    rows = read_gold_file(path)
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.query_id, row.doc_id)
        if key in seen:
            raise GoldFileError(f"{path}:{row.line}: pair ({row.query_id}, {row.doc_id}) repeated, first on line {seen[key]}")
        seen[key] = row.line
    pairs = {
        (q, d): pk for pk, q, d in Candidate.objects.filter(
            collection=collection, query__external_id__in={r.query_id for r in rows},
            document__external_id__in={r.doc_id for r in rows},
        ).values_list("pk", "query__external_id", "document__external_id")
    }
    by_grade: dict[int, list[int]] = {}
    for row in rows:
        pk = pairs.get((row.query_id, row.doc_id))
        if pk is None:
            raise GoldFileError(f"{path}:{row.line}: ({row.query_id}, {row.doc_id}) is not a candidate of {collection.slug}")
        by_grade.setdefault(row.grade, []).append(pk)
    for grade, pks in by_grade.items():
        Candidate.objects.filter(pk__in=pks).update(is_gold=True, gold_grade=grade)
    return GoldImport(marked=len(rows), lines=len(rows))
