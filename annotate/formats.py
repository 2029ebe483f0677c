"""The interchange formats, parsed in one place: one record or line in, plain values out.

- Seed labels, one JSON object per line:
  pointwise ``{"query", "doc", "label"}``, pairwise ``{"query", "positive", "negative"}``,
  listwise ``{"query", "candidates": [{"doc", "label"}, ...]}``; ids are optional (``query_id``,
  ``doc_id``; pairwise ``positive_id`` / ``negative_id``).
- qrels: BEIR ``query-id corpus-id score`` (header optional) or TREC ``qid iteration docid grade``.
- TREC runs: ``qid Q0 docid rank score tag``.

File readers (annotate.importing, training.data) stream the lines and add where a record came
from (file:line) to a FormatError's reason. Two readers take seed records, each by its own
SeedRules: the importer takes judgments (JudgmentRules), training takes examples (ExampleRules);
the walk over a record is SeedRules.parse, once. Plain Python, bar gettext: an import's reasons
are shown to the person who started it, in their language (training's ExampleRules stay English).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from annotate.grades import GRADE_MAX, GRADE_MIN

LISTWISE, POINTWISE, PAIRWISE = "listwise", "pointwise", "pairwise"
SEED_FORMATS = (LISTWISE, POINTWISE, PAIRWISE)
# The keys a complete record of each format has (what the exports write).
SEED_KEYS = {LISTWISE: ("candidates",), POINTWISE: ("doc", "label"), PAIRWISE: ("positive", "negative")}
MAX_ID_LENGTH = 255


class FormatError(ValueError):
    """One record or line breaks its format; the message is the reason (the reader adds file:line)."""


# --- field checks -------------------------------------------------------------------------------


def json_type(value) -> str:
    """What a JSON value is, as "got ..." names it in a reason."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return pgettext("JSON value", "a boolean")
    if isinstance(value, (int, float)):
        return pgettext("JSON value", "a number")
    if isinstance(value, str):
        return pgettext("JSON value", "a string")
    if isinstance(value, list):
        return pgettext("JSON value", "an array")
    return pgettext("JSON value", "an object")


def external_id(value, field: str) -> str:
    """Ids are strings; a JSON integer is accepted and turned into its decimal string (many files
    write numeric ids unquoted). Floats, booleans, empty strings and over-long ids are refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FormatError(_must_be_string(field, value))
    text = str(value)
    if not text.strip():
        raise FormatError(_("'%(field)s' is empty") % {"field": field})
    if len(text) > MAX_ID_LENGTH:
        raise FormatError(_("'%(field)s' is longer than %(max)d characters") % {"field": field, "max": MAX_ID_LENGTH})
    return text


def source_ranks(sources) -> dict[str, int]:
    """{source name: rank} of a candidate's `sources` object: the entries that carry a rank (a
    positive integer, not a boolean); anything else -- a qrels or labels entry, a malformed one --
    is not a ranking."""
    if not isinstance(sources, dict):
        return {}
    return {name: detail["rank"] for name, detail in sources.items()
            if isinstance(detail, dict) and type(detail.get("rank")) is int and detail["rank"] >= 1}


def string_field(row: dict, field: str, *, required: bool = True, allow_null: bool = False) -> str | None:
    if field not in row:
        if required:
            raise FormatError(_missing(field))
        return None
    value = row[field]
    if value is None and allow_null:
        return None
    if not isinstance(value, str):
        raise FormatError(_must_be_string(field, value))
    return value


def _missing(field: str) -> str:
    return _("missing field '%(field)s'") % {"field": field}


def _must_be_string(field: str, value) -> str:
    return _("'%(field)s' must be a string, got %(type)s") % {"field": field, "type": json_type(value)}


def grade_from_json(value, field: str) -> int:
    """A judgment's grade in a JSON row: an integer (not a boolean, not a string, not 2.0) within 0..3."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(_("'%(field)s' must be an integer, got %(type)s") % {"field": field, "type": json_type(value)})
    return _in_grade_range(value, field)


def grade_from_token(token: str, field: str) -> int:
    """A judgment's grade in a TSV/TREC column: an integer token within 0..3."""
    try:
        value = int(token)
    except ValueError:
        raise FormatError(_not_an_integer(field, token)) from None
    return _in_grade_range(value, field)


def _not_an_integer(field: str, token: str) -> str:
    return _("%(field)s '%(value)s' is not an integer") % {"field": field, "value": token}


def _in_grade_range(value: int, field: str) -> int:
    if not GRADE_MIN <= value <= GRADE_MAX:
        raise FormatError(_("%(field)s %(value)d is outside %(low)d..%(high)d")
                          % {"field": field, "value": value, "low": GRADE_MIN, "high": GRADE_MAX})
    return value


def finite_float(token: str, field: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise FormatError(_("%(field)s '%(value)s' is not a number") % {"field": field, "value": token}) from None
    if not math.isfinite(value):
        raise FormatError(_("%(field)s '%(value)s' is not a finite number") % {"field": field, "value": token})
    return value


def text_id(prefix: str, text: str) -> str:
    """A stable id for a text named by text only: prefix + the first 16 hex digits of its sha256."""
    return f"{prefix}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"


# --- seed records -------------------------------------------------------------------------------


@dataclass(slots=True)
class SeedDoc:
    doc_id: str | None  # None: the record names the document by its text only
    text: str | None    # None: by its id only
    label: float | None = None
    weight: float = 1.0
    role: str | None = None  # pairwise: "positive" or "negative"


@dataclass(slots=True)
class SeedRecord:
    format: str
    query_id: str | None  # None: the record names the query by its text only
    query: str | None
    docs: list[SeedDoc] = field(default_factory=list)
    split: str | None = None


class SeedRules:
    """How a reader takes a seed record: ``parse`` walks the record, the rules check each field."""

    def parse(self, record: dict, file_format: str, *, before_docs: Callable[[SeedRecord], None] | None = None
              ) -> SeedRecord:
        """The record read by these rules. ``before_docs`` sees the record once its query is read
        and before its documents are, so a reader's own check of the query (a repeat) comes first."""
        self.check_keys(record, file_format)
        query_id, query = self.query(record, file_format)
        seed = SeedRecord(file_format, query_id, query)
        if before_docs is not None:
            before_docs(seed)
        if file_format == POINTWISE:
            seed.docs.append(self.pointwise_doc(record))
        elif file_format == PAIRWISE:
            seed.docs.extend(self.pair(record))
        else:
            candidates = self.candidates(record)
            split = record.get("split")
            seed.split = split if isinstance(split, str) else None
            seed.docs.extend(self.candidate(candidate, index) for index, candidate in enumerate(candidates))
        return seed

    def format_of(self, record: dict) -> str:
        """The format a record is read in (the importer: each record's own; training: the first's)."""
        raise NotImplementedError

    def check_keys(self, record: dict, file_format: str) -> None:
        """Refuse a record that is not of ``file_format`` (nothing to refuse when each record says
        its own format)."""

    def query(self, record: dict, file_format: str) -> tuple[str | None, str | None]:
        raise NotImplementedError

    def pointwise_doc(self, record: dict) -> SeedDoc:
        raise NotImplementedError

    def pair(self, record: dict) -> list[SeedDoc]:
        raise NotImplementedError

    def candidates(self, record: dict) -> list:
        raise NotImplementedError

    def candidate(self, candidate, index: int) -> SeedDoc:
        raise NotImplementedError


class JudgmentRules(SeedRules):
    """Seed labels to import as judgments. Each record says its own format by its keys. Grades are
    integers within 0..3; an id may stand in for a text already known; a listwise candidate may
    come without a grade (proposed for judging); a pairwise side may be a list of texts. Other
    keys (soft_label, weight, n_judgments, sources, split, ...) are ignored."""

    def format_of(self, record: dict) -> str:
        if "candidates" in record:
            return LISTWISE
        if any(key in record for key in ("positive", "negative", "positive_id", "negative_id")):
            return PAIRWISE
        if any(key in record for key in ("doc", "doc_id", "label")):
            return POINTWISE
        raise FormatError(_("unknown row format: expected pointwise {query, doc, label}, pairwise "
                            "{query, positive, negative} or listwise {query, candidates}"))

    def query(self, record, file_format):
        return _named(record, "query", "query_id")

    def pointwise_doc(self, record):
        doc_id, text = _named(record, "doc", "doc_id")
        if "label" not in record:
            raise FormatError(_missing("label"))
        return SeedDoc(doc_id, text, label=grade_from_json(record["label"], "label"))

    def pair(self, record):
        docs = []
        for role in ("positive", "negative"):
            id_key = f"{role}_id"
            if record.get(id_key) is not None:
                text = string_field(record, role, required=False, allow_null=True)
                docs.append(SeedDoc(external_id(record[id_key], id_key), text, role=role))
                continue
            if role not in record:
                raise FormatError(_missing(role))
            value = record[role]
            texts = value if isinstance(value, list) else [value]
            if isinstance(value, list) and not value:
                raise FormatError(_("'%(field)s' is an empty list") % {"field": role})
            for index, text in enumerate(texts):
                if not isinstance(text, str):
                    where = f"{role}[{index}]" if isinstance(value, list) else role
                    raise FormatError(_must_be_string(where, text))
                docs.append(SeedDoc(None, text, role=role))
        return docs

    def candidates(self, record):
        candidates = record["candidates"]
        if not isinstance(candidates, list):
            raise FormatError(_("'%(field)s' must be an array, got %(type)s")
                              % {"field": "candidates", "type": json_type(candidates)})
        return candidates

    def candidate(self, candidate, index):
        where = f"candidates[{index}]."
        if not isinstance(candidate, dict):
            raise FormatError(_("'%(field)s' must be an object, got %(type)s")
                              % {"field": f"candidates[{index}]", "type": json_type(candidate)})
        doc_id, text = _named(candidate, "doc", "doc_id", where)
        label = candidate.get("label")
        return SeedDoc(doc_id, text, label=None if label is None else grade_from_json(label, f"{where}label"))


def _named(row: dict, text_key: str, id_key: str, where: str = "") -> tuple[str | None, str | None]:
    """(id or None, text or None) from a text field and/or an id field; at least one must be there."""
    text = row.get(text_key)
    if text is not None and not isinstance(text, str):
        raise FormatError(_must_be_string(f"{where}{text_key}", text))
    if row.get(id_key) is not None:
        return external_id(row[id_key], f"{where}{id_key}"), text
    if text is None:
        raise FormatError(_missing(f"{where}{text_key}"))
    return None, text


class ExampleRules(SeedRules):
    """Seed records as training examples. A file keeps the format of its first record. Every text
    is given and non-empty; a grade is any number in [0, 3] (an export's aggregated grades are
    fractional); each candidate may carry a weight in [0, 1], the export's confidence (default 1)."""

    def format_of(self, record: dict) -> str:
        for file_format in SEED_FORMATS:
            if all(key in record for key in SEED_KEYS[file_format]):
                return file_format
        raise FormatError(
            f"unknown format: expected listwise {{query, candidates}}, pointwise "
            f"{{query, doc, label}} or pairwise {{query, positive, negative}}, got keys {sorted(record)}"
        )

    def check_keys(self, record, file_format):
        if not all(key in record for key in SEED_KEYS[file_format]):
            raise FormatError({
                LISTWISE: "listwise line without 'candidates'",
                POINTWISE: "pointwise line needs 'doc' and 'label'",
                PAIRWISE: "pairwise line needs 'positive' and 'negative'",
            }[file_format])

    def query(self, record, file_format):
        query = _text(record, "query")
        if file_format == PAIRWISE:
            return None, query  # a pairwise query is known by its text
        value = record.get("query_id", record.get("qid"))
        if value is not None and (not isinstance(value, (str, int)) or isinstance(value, bool)):
            raise FormatError(f"'query_id' must be a string, got {value!r}")
        return None if value is None else str(value), query

    def pointwise_doc(self, record):
        return SeedDoc(_doc_id(record), _text(record, "doc"),
                       label=_number(record, "label", high=GRADE_MAX), weight=_weight(record))

    def pair(self, record):
        positive, negative = _text(record, "positive"), _text(record, "negative")
        if positive == negative:
            raise FormatError("'positive' and 'negative' are the same document")
        weight = _weight(record)
        return [SeedDoc(None, positive, weight=weight, role="positive"),
                SeedDoc(None, negative, weight=weight, role="negative")]

    def candidates(self, record):
        candidates = record["candidates"]
        if not isinstance(candidates, list) or not candidates:
            raise FormatError("'candidates' must be a non-empty list")
        return candidates

    def candidate(self, candidate, index):
        what = f"candidate {index}: "
        if not isinstance(candidate, dict):
            raise FormatError(f"{what}expected an object")
        text = _text(candidate, "doc", what)
        return SeedDoc(_doc_id(candidate), text,
                       label=_number(candidate, "label", high=GRADE_MAX, what=what), weight=_weight(candidate, what))


def _doc_id(record: dict) -> str | None:
    # Any value is taken as written, as its string (an explicit null is the id "None").
    return str(record["doc_id"]) if "doc_id" in record else None


def _text(record: dict, key: str, what: str = "") -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FormatError(f"{what}{key!r} must be a non-empty string, got {value!r}")
    return value


def _number(record: dict, key: str, *, default=None, low: float = 0.0, high: float = math.inf, what: str = "") -> float:
    value = record.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        bounds = f"in [{low:g}, {high:g}]" if high != math.inf else f">= {low:g}"
        raise FormatError(f"{what}{key!r} must be a number {bounds}, got {value!r}")
    return float(value)


def _weight(record: dict, what: str = "") -> float:
    return _number(record, "weight", default=1.0, high=1.0, what=what)


# --- qrels and runs -----------------------------------------------------------------------------

BEIR_HEADER = ("query-id", "corpus-id", "score")


def qrels_columns(fields: list[str]) -> int:
    """The layout of a qrels file from its first line: 3 (BEIR, with or without its header) or 4 (TREC)."""
    if len(fields) == 4:
        return 4
    if len(fields) == 3:
        if _is_int(fields[2]) or tuple(f.lower() for f in fields) == BEIR_HEADER:
            return 3
        raise FormatError(_("bad header: expected 'query-id corpus-id score', got '%(header)s'")
                          % {"header": " ".join(fields)})
    raise FormatError(
        _("unrecognised qrels: expected a BEIR header 'query-id corpus-id score' or TREC rows "
          "'qid 0 docid grade', got %(n)d columns") % {"n": len(fields)}
    )


def is_qrels_header(fields: list[str]) -> bool:
    return len(fields) == 3 and not _is_int(fields[2])


def parse_qrel(fields: list[str], columns: int) -> tuple[str, str, int]:
    """(query id, doc id, grade) of one qrels row of a file laid out in ``columns`` columns."""
    if len(fields) != columns:
        layout = "query-id corpus-id score" if columns == 3 else "qid iteration docid grade"
        raise FormatError(_wrong_columns(columns, layout, len(fields)))
    query_id, doc_id, grade = (fields[0], fields[1], fields[2]) if columns == 3 else (fields[0], fields[2], fields[3])
    return query_id, doc_id, grade_from_token(grade, "grade")


def parse_run_line(fields: list[str]) -> tuple[str, str, int, float, str]:
    """(query id, doc id, rank, score, tag) of one TREC run row; the Q0 column is ignored."""
    if len(fields) != 6:
        raise FormatError(_wrong_columns(6, "qid Q0 docid rank score tag", len(fields)))
    query_id, _q0, doc_id, rank, score, tag = fields
    try:
        rank = int(rank)
    except ValueError:
        raise FormatError(_not_an_integer("rank", rank)) from None
    if rank < 0:
        raise FormatError(_("%(field)s %(value)d is negative") % {"field": "rank", "value": rank})
    return query_id, doc_id, rank, finite_float(score, "score"), tag


def _wrong_columns(expected: int, layout: str, got: int) -> str:
    return _("expected %(expected)d columns (%(layout)s), got %(got)d") % {
        "expected": expected, "layout": layout, "got": got}


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True
