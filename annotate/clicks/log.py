"""Click logs: one search per line, what was shown where and what was clicked.

    {"query_id": "q17", "query": "南京旅游必去",
     "shown": [{"doc_id": "d3", "position": 1}, {"doc_id": "d9", "position": 2}, ...],
     "clicks": [{"doc_id": "d9", "dwell_s": 41.5}]}

- ``query_id``: the query's external id (a string). ``query``: its text; needed only when the
  collection does not hold that query yet.
- ``shown``: the results in the order shown, each a document's external id and its 1-based
  position; positions run 1, 2, ... n with no gap and no repeat (a gap would hide where the
  examination stopped), and a document appears once.
- ``clicks`` (optional, default none): the documents clicked, each one of ``shown``; ``dwell_s``
  (optional) seconds on the document, a number >= 0. A document clicked twice in one search counts
  as one click: the model is of whether a result was clicked, not how often.

`read_click_log` streams a file and yields one `Search` per line; a bad line ends the read with
file:line and the reason (ImportFileError), in the language of whoever started the import.
`ClickCounts` sums searches into (query, document, position) cells: what the click model needs,
so a log of millions of searches becomes a few numbers per pair.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.translation import gettext as _

from annotate.formats import external_id, json_type
from annotate.importing.errors import ImportFileError
from annotate.importing.lines import read_json_objects

MAX_SHOWN = 1000  # a page of results, not a dump of the corpus


@dataclass(frozen=True)
class Search:
    line: int
    query_id: str
    query: str | None
    shown: tuple[str, ...]              # document ids, position 1 first
    clicked: frozenset[str]
    dwell_s: dict[str, float] = field(default_factory=dict)  # per clicked document, when given


def read_click_log(path: Path, *, known_document: Callable[[str], bool] | None = None) -> Iterator[Search]:
    """Yield each line's search; `known_document(doc_id)` False refuses the line (an unknown
    document cannot become a candidate: the corpus is imported first)."""
    for number, row in read_json_objects(Path(path)):
        try:
            search = parse_search(row, number)
        except ValueError as error:
            raise ImportFileError(path, number, str(error)) from None
        if known_document is not None:
            unknown = next((doc for doc in search.shown if not known_document(doc)), None)
            if unknown is not None:
                raise ImportFileError(path, number, _("unknown document %(doc)r: import the corpus first")
                                      % {"doc": unknown})
        yield search


def parse_search(row: dict, number: int = 0) -> Search:
    """One line's object, checked; ValueError names the first rule it breaks."""
    unknown = sorted(set(row) - {"query_id", "query", "shown", "clicks"})
    if unknown:
        raise ValueError(_("unknown field %(field)r (expected query_id, query, shown, clicks)") % {"field": unknown[0]})
    query_id = external_id(row.get("query_id"), "query_id")
    query = row.get("query")
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise ValueError(_("query must be non-empty text, got %(type)s") % {"type": json_type(query)})
    shown = _shown(row.get("shown"))
    clicked, dwell = _clicks(row.get("clicks", []), set(shown))
    return Search(line=number, query_id=query_id, query=query.strip() if query else None, shown=shown,
                  clicked=frozenset(clicked), dwell_s=dwell)


def _shown(value) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(_("shown must be a non-empty list of results, got %(type)s") % {"type": json_type(value)})
    if len(value) > MAX_SHOWN:
        raise ValueError(_("shown holds %(n)d results; at most %(max)d") % {"n": len(value), "max": MAX_SHOWN})
    by_position: dict[int, str] = {}
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"doc_id", "position"}:
            raise ValueError(_("each shown result must be {\"doc_id\", \"position\"}, got %(value).60r") % {"value": entry})
        doc_id, position = external_id(entry["doc_id"], "doc_id"), entry["position"]
        if isinstance(position, bool) or not isinstance(position, int):
            raise ValueError(_("position of %(doc)r must be an integer, got %(value)r") % {"doc": doc_id, "value": position})
        if position < 1:
            raise ValueError(_("position of %(doc)r must be 1 or more, got %(value)d") % {"doc": doc_id, "value": position})
        if position in by_position:
            raise ValueError(_("position %(position)d is given twice (%(a)r and %(b)r)")
                             % {"position": position, "a": by_position[position], "b": doc_id})
        by_position[position] = doc_id
    missing = next((p for p in range(1, len(by_position) + 1) if p not in by_position), None)
    if missing is not None:
        raise ValueError(_("positions must run 1..%(n)d without a gap: position %(position)d is missing")
                         % {"n": len(by_position), "position": missing})
    shown = tuple(by_position[p] for p in range(1, len(by_position) + 1))
    seen: set[str] = set()
    for doc_id in shown:
        if doc_id in seen:
            raise ValueError(_("document %(doc)r is shown twice in one search") % {"doc": doc_id})
        seen.add(doc_id)
    return shown


def _clicks(value, shown: set[str]) -> tuple[set[str], dict[str, float]]:
    if not isinstance(value, list):
        raise ValueError(_("clicks must be a list, got %(type)s") % {"type": json_type(value)})
    clicked: set[str] = set()
    dwell: dict[str, float] = {}
    for entry in value:
        if not isinstance(entry, dict) or "doc_id" not in entry or set(entry) - {"doc_id", "dwell_s"}:
            raise ValueError(_("each click must be {\"doc_id\", \"dwell_s\"?}, got %(value).60r") % {"value": entry})
        doc_id = external_id(entry["doc_id"], "doc_id")
        if doc_id not in shown:
            raise ValueError(_("click on %(doc)r, which this search did not show") % {"doc": doc_id})
        if "dwell_s" in entry:
            seconds = entry["dwell_s"]
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                    or seconds < 0:
                raise ValueError(_("dwell_s of %(doc)r must be a number of seconds >= 0, got %(value)r")
                                 % {"doc": doc_id, "value": seconds})
            dwell[doc_id] = dwell.get(doc_id, 0.0) + float(seconds)
        clicked.add(doc_id)
    return clicked, dwell


@dataclass
class ClickCounts:
    """Impressions, clicks and dwell seconds per (query id, document id, position), summed over searches."""

    cells: dict[tuple[str, str, int], list] = field(default_factory=dict)  # -> [impressions, clicks, dwell]
    searches: int = 0
    clicks: int = 0

    def add(self, searches: Iterable[Search]) -> ClickCounts:
        for search in searches:
            self.searches += 1
            self.clicks += len(search.clicked)
            for position, doc_id in enumerate(search.shown, start=1):
                cell = self.cells.setdefault((search.query_id, doc_id, position), [0, 0, 0.0])
                cell[0] += 1
                if doc_id in search.clicked:
                    cell[1] += 1
                    cell[2] += search.dwell_s.get(doc_id, 0.0)
        return self
