"""One writer per export format: query groups in, lines of text out.

- listwise (DESIGN.md): one line per query
  `{"query_id","query","split","candidates":[{"doc_id","doc","label","soft_label","weight","n_judgments","sources"}]}`
- pointwise: one line per pair `{"query_id","query","doc_id","doc","label","weight"}`
- pairwise: `{"query_id","query","positive_id","positive","negative_id","negative","weight","margin"}` for
  pairs of one query whose labels differ; margin = the label difference, weight = the product of
  the two candidates' weights (both labels must be right for the preference to be). At most
  `max_pairs_per_query` per query: the largest margins first, then the highest weights, then by
  document ids — clear preferences before fine ones, and always the same pairs.
- qrels: TREC `query_id 0 doc_id label`; ids only. An id that is empty, contains whitespace or
  starts like a spreadsheet formula (= + - @; tab and CR are whitespace) fails the export
  (ExportDataError names it), unless it is a plain number such as "-1". The whitespace rule is
  the format's own (a field ends at a space). The formula rule is spreadsheet-formula injection
  (OWASP "CSV injection"; issue #8): a qrels file is space-separated text that a spreadsheet opens
  as cells, and `=HYPERLINK(...)` as a query id would run there. The usual remedy, a leading single
  quote, cannot be applied: trec_eval and ir_measures match ids byte for byte against a run file,
  so an altered id would silently score as a different query. Refusing tells the person why; the
  JSONL formats carry any id.
- flagembedding (FlagEmbedding's reranker/embedder training files):
  `{"query","pos":[...],"neg":[...],"pos_scores":[...],"neg_scores":[...]}`; positives are labels
  >= positive_grade, scores are the soft labels; a query without a positive or without a negative
  is left out (FlagEmbedding samples negatives from the list and needs at least one of each).

JSON is written compact, UTF-8, not ASCII-escaped, keys in a fixed order, no timestamps, so the
same data gives the same bytes. Text in JSON is written exactly as stored, a query or document
starting with = + - or @ included: JSON Lines is not a spreadsheet format (a spreadsheet does not
open a line of JSON as cells, every string sits inside quotes after a key), the text is data for a
trainer, and prefixing it would change what the model learns. Only the qrels format, whose fields
a spreadsheet would read as cells, guards against formulas (above).
"""
from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable, Iterator

from django.utils.translation import gettext

from .filters import ExportParams
from .records import Judged, QueryGroup

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# What that encoder writes for a str (ensure_ascii=False): quotes, and escapes for " \\ and control
# characters only; the C function when the interpreter has it, as the encoder itself uses.
_string = json.encoder.encode_basestring
TAIL_CACHE_SIZE = 100_000
_WHITESPACE = re.compile(r"\s")
# What a spreadsheet takes for the start of a formula (OWASP; tab and CR are refused as whitespace).
_FORMULA_STARTS = frozenset("=+-@")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")  # "-1" opens as a number, not as a formula


class ExportDataError(ValueError):
    """The data cannot be written in the requested format (the message says which row and why)."""


class Writer:
    extension = "jsonl"

    def __init__(self, params: ExportParams):
        self.params = params
        self.counts = {"lines": 0, "queries": 0, "candidates": 0}

    def lines(self, groups: Iterable[QueryGroup]) -> Iterator[str]:
        for group in groups:
            written = 0
            for line in self.group_lines(group):
                written += 1
                yield line
            if written:
                self.counts["lines"] += written
                self.counts["queries"] += 1
                self.counts["candidates"] += len(group.candidates)

    def group_lines(self, group: QueryGroup) -> Iterator[str]:
        raise NotImplementedError


class ListwiseWriter(Writer):
    """The export's bulk format, so written without a dict per candidate: the same bytes as
    `_dumps` of the line's dict (tests/export/test_read_paths.py holds it to that), assembled from
    `_string` (the encoder's own string escaping) and the candidate's tail after its texts, encoded
    once per Judged (shared by all pairs with the same label, weights and sources)."""

    def __init__(self, params: ExportParams):
        super().__init__(params)
        self.tails: dict[Judged, str] = {}

    def group_lines(self, group: QueryGroup) -> Iterator[str]:
        tails = self.tails
        candidates = []
        for c in group.candidates:
            tail = tails.get(c.judged) or self._tail(c.judged)
            candidates.append('{"doc_id":' + _string(c.doc_id) + ',"doc":' + _string(c.doc) + tail)
        yield ('{"query_id":' + _string(group.query_id) + ',"query":' + _string(group.query) + ',"split":'
               + _string(group.split) + ',"candidates":[' + ",".join(candidates) + "]}\n")

    def _tail(self, judged: Judged) -> str:
        """`,"label":..,"sources":[..]}`: the candidate object after its texts."""
        fields = {"label": judged.label, "soft_label": judged.soft_label, "weight": judged.weight}
        if judged.grade_probs is not None:
            fields["grade_probs"] = judged.grade_probs
        fields.update(n_judgments=judged.n_judgments, sources=judged.sources)
        if judged.retrieval_rank is not None:
            fields["retrieval_rank"] = judged.retrieval_rank
        tail = "," + _dumps(fields)[1:]
        if len(self.tails) >= TAIL_CACHE_SIZE:
            self.tails.clear()
        self.tails[judged] = tail
        return tail


class PointwiseWriter(Writer):
    def group_lines(self, group: QueryGroup) -> Iterator[str]:
        for c in group.candidates:
            yield _dumps({"query_id": group.query_id, "query": group.query, "doc_id": c.doc_id, "doc": c.doc,
                          "label": c.label, "weight": c.weight}) + "\n"


class PairwiseWriter(Writer):
    def group_lines(self, group: QueryGroup) -> Iterator[str]:
        candidates = group.candidates
        pairs = (
            (b.label - a.label, a.weight * b.weight, b.doc_id, a.doc_id, b, a)
            for a in candidates for b in candidates if b.label > a.label
        )
        best = heapq.nsmallest(self.params.max_pairs_per_query, pairs, key=lambda p: (-p[0], -p[1], p[2], p[3]))
        for margin, weight, _, _, positive, negative in best:
            yield _dumps({"query_id": group.query_id, "query": group.query, "positive_id": positive.doc_id,
                          "positive": positive.doc, "negative_id": negative.doc_id, "negative": negative.doc,
                          "weight": round(weight, 6), "margin": margin}) + "\n"


class QrelsWriter(Writer):
    extension = "qrels"

    def group_lines(self, group: QueryGroup) -> Iterator[str]:
        _check_id(group.query_id)
        for c in group.candidates:
            _check_id(c.doc_id, query_id=group.query_id)
            yield f"{group.query_id} 0 {c.doc_id} {c.label}\n"


class FlagEmbeddingWriter(Writer):
    def group_lines(self, group: QueryGroup) -> Iterator[str]:
        threshold = self.params.positive_grade
        positives = [c for c in group.candidates if c.label >= threshold]
        negatives = [c for c in group.candidates if c.label < threshold]
        if not positives or not negatives:
            return
        yield _dumps({"query": group.query, "pos": [c.doc for c in positives], "neg": [c.doc for c in negatives],
                      "pos_scores": [c.soft_label for c in positives],
                      "neg_scores": [c.soft_label for c in negatives]}) + "\n"


def _check_id(value: str, *, query_id: str | None = None) -> None:
    """A query id (query_id None) or a doc id of that query, as a qrels field may hold it."""
    if not value or _WHITESPACE.search(value):
        raise ExportDataError(gettext("%(what)s %(value)r is empty or contains whitespace; TREC qrels cannot hold it")
                              % {"what": _id_name(query_id), "value": value})
    if value[0] in _FORMULA_STARTS and not _NUMBER.fullmatch(value):
        raise ExportDataError(gettext(
            "%(what)s %(value)r starts with %(start)r: a spreadsheet opening the qrels file would run it as a "
            "formula, and TREC tools match ids exactly, so it is not altered either; export a JSONL format instead")
            % {"what": _id_name(query_id), "value": value, "start": value[0]})


def _id_name(query_id: str | None) -> str:
    if query_id is None:
        return gettext("query id")
    return gettext("doc id (query '%(query)s')") % {"query": query_id}


WRITERS: dict[str, type[Writer]] = {
    "listwise": ListwiseWriter,
    "pointwise": PointwiseWriter,
    "pairwise": PairwiseWriter,
    "qrels": QrelsWriter,
    "flagembedding": FlagEmbeddingWriter,
}
