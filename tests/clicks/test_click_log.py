"""Reading click logs (annotate.clicks.log): every bad line is refused with file:line and why."""
from __future__ import annotations

import json

import pytest

from annotate.clicks.log import ClickCounts, read_click_log
from annotate.importing.errors import ImportFileError

GOOD = {"query_id": "q1", "query": "python 列表去重",
        "shown": [{"doc_id": "d1", "position": 1}, {"doc_id": "d2", "position": 2}, {"doc_id": "d3", "position": 3}],
        "clicks": [{"doc_id": "d2", "dwell_s": 40}, {"doc_id": "d2"}]}


def _write(tmp_path, *rows) -> str:
    path = tmp_path / "clicks.jsonl"
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n"
                            for row in rows), encoding="utf-8")
    return path


def test_a_good_log_is_read_into_searches_and_summed_into_cells(tmp_path):
    second = {**GOOD, "shown": [{"doc_id": "d2", "position": 1}, {"doc_id": "d1", "position": 2}], "clicks": []}
    searches = list(read_click_log(_write(tmp_path, GOOD, second), known_document=lambda d: True))
    assert [s.line for s in searches] == [1, 2]
    assert searches[0].shown == ("d1", "d2", "d3") and searches[0].clicked == {"d2"}
    assert searches[0].dwell_s == {"d2": 40.0} and searches[1].clicked == frozenset()
    counts = ClickCounts().add(searches)
    assert counts.searches == 2 and counts.clicks == 1
    assert counts.cells[("q1", "d2", 2)] == [1, 1, 40.0]  # clicked twice in one search: one click
    assert counts.cells[("q1", "d2", 1)] == [1, 0, 0.0] and counts.cells[("q1", "d1", 2)] == [1, 0, 0.0]


def test_integer_ids_are_read_as_their_decimal_text_like_every_importer(tmp_path):
    row = {"query_id": 7, "shown": [{"doc_id": 12, "position": 1}, {"doc_id": "d2", "position": 2}],
           "clicks": [{"doc_id": 12}]}
    search = next(read_click_log(_write(tmp_path, row)))
    assert (search.query_id, search.shown, search.clicked) == ("7", ("12", "d2"), {"12"})


def test_positions_given_out_of_order_are_put_in_order(tmp_path):
    row = {**GOOD, "shown": list(reversed(GOOD["shown"]))}
    assert next(read_click_log(_write(tmp_path, row))).shown == ("d1", "d2", "d3")


@pytest.mark.parametrize("change, reason", [
    ({"shown": [{"doc_id": "d1", "position": 1}, {"doc_id": "d2", "position": 3}]},
     "positions must run 1..2 without a gap: position 2 is missing"),
    ({"shown": [{"doc_id": "d1", "position": 1.0}]}, "position of 'd1' must be an integer, got 1.0"),
    ({"shown": [{"doc_id": "d1", "position": "1"}]}, "position of 'd1' must be an integer, got '1'"),
    ({"shown": [{"doc_id": "d1", "position": True}]}, "position of 'd1' must be an integer, got True"),
    ({"shown": [{"doc_id": "d1", "position": 0}]}, "position of 'd1' must be 1 or more, got 0"),
    ({"shown": [{"doc_id": "d1", "position": 1}, {"doc_id": "d2", "position": 1}]}, "position 1 is given twice"),
    ({"shown": [{"doc_id": "d1", "position": 1}, {"doc_id": "d1", "position": 2}]}, "'d1' is shown twice"),
    ({"clicks": [{"doc_id": "d9"}]}, "click on 'd9', which this search did not show"),
    ({"clicks": [{"doc_id": "d1", "dwell_s": -1}]}, "dwell_s of 'd1' must be a number of seconds >= 0"),
    ({"clicks": "d1"}, "clicks must be a list, got a string"),
    ({"shown": []}, "shown must be a non-empty list"),
    ({"query_id": 7.5}, "'query_id' must be a string, got a number"),
    ({"query_id": ""}, "'query_id' is empty"),
    ({"shown": [{"doc_id": "x" * 256, "position": 1}]}, "'doc_id' is longer than 255 characters"),
    ({"when": "2026-01-01"}, "unknown field 'when'"),
])
def test_a_bad_line_is_refused_with_file_line_and_the_rule(tmp_path, change, reason):
    path = _write(tmp_path, GOOD, {**GOOD, **change})
    with pytest.raises(ImportFileError) as refused:
        list(read_click_log(path))
    assert str(refused.value).startswith("clicks.jsonl:2: ") and reason in str(refused.value)


def test_an_unknown_document_is_refused_at_its_line(tmp_path):
    with pytest.raises(ImportFileError, match=r"clicks.jsonl:1: unknown document 'd3': import the corpus first"):
        list(read_click_log(_write(tmp_path, GOOD), known_document=lambda doc: doc != "d3"))


def test_bad_json_and_empty_files_are_refused_like_every_import(tmp_path):
    with pytest.raises(ImportFileError, match=r"clicks.jsonl:2: bad JSON"):
        list(read_click_log(_write(tmp_path, GOOD, "{oops")))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ImportFileError, match="empty.jsonl: empty file"):
        list(read_click_log(tmp_path / "empty.jsonl"))
