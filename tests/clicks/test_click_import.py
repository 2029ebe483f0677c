"""Taking a click log into a collection (annotate.clicks.services): all or nothing, once per file,
and click labels that enter the collection as a source of their own."""
from __future__ import annotations

import json

import pytest

from annotate.clicks.services import (
    MIN_EXAMINATIONS,
    fit_click_labels,
    import_click_log,
)
from annotate.importing.errors import ImportFileError
from annotate.models import (
    CLICK_SOURCE,
    Candidate,
    ClickCount,
    ClickLog,
    Collection,
    Document,
    Judgment,
    JudgmentRevision,
    Query,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def collection():
    collection = Collection.objects.create(slug="clicks", name="Clicks")
    for d in range(1, 5):
        Document.objects.create(collection=collection, external_id=f"d{d}", text=f"document {d}")
    Query.objects.create(collection=collection, external_id="q1", text="first query")
    return collection


def _log(tmp_path, searches, name="clicks.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(s) + "\n" for s in searches), encoding="utf-8")
    return path


def _search(query_id, order, clicked=(), text=None):
    row = {"query_id": query_id, "shown": [{"doc_id": d, "position": i} for i, d in enumerate(order, start=1)],
           "clicks": [{"doc_id": d, "dwell_s": 30} for d in clicked]}
    if text:
        row["query"] = text
    return row


def test_a_log_adds_queries_candidates_and_counts_once(collection, tmp_path, staff_user):
    searches = [_search("q1", ["d1", "d2", "d3"], ["d2"]), _search("q1", ["d2", "d1", "d3"], ["d2"]),
                _search("q2", ["d4", "d1"], [], text="a new query")]
    path = _log(tmp_path, searches)
    result = import_click_log(collection=collection, path=path, imported_by=staff_user)
    assert not result.already_imported and result.new_queries == 1 and result.cells == 7  # d3 twice at 3
    assert Query.objects.get(collection=collection, external_id="q2").text == "a new query"
    d2 = Candidate.objects.get(query__external_id="q1", document__external_id="d2")
    assert d2.sources[CLICK_SOURCE] == {"rank": 1, "score": 1.0}
    assert {(c.position, c.impressions, c.clicks, c.dwell_seconds) for c in d2.click_counts.all()} == {
        (1, 1, 1, 30.0), (2, 1, 1, 30.0)}
    log = ClickLog.objects.get()
    assert (log.searches, log.clicks, log.imported_by) == (3, 2, staff_user)

    again = import_click_log(collection=collection, path=path)
    assert again.already_imported and again.log == log
    assert sum(c.impressions for c in ClickCount.objects.all()) == 8  # not counted twice

    more = _log(tmp_path, [_search("q1", ["d2", "d1"], ["d1"])], name="more.jsonl")
    import_click_log(collection=collection, path=more)
    assert ClickCount.objects.get(candidate=d2, position=1).impressions == 2  # a new log adds to a cell


@pytest.mark.parametrize("bad, reason", [
    ({"query_id": "q1", "shown": [{"doc_id": "d9", "position": 1}]}, "clicks.jsonl:2: unknown document 'd9'"),
    ({"query_id": "q7", "shown": [{"doc_id": "d1", "position": 1}]},
     "clicks.jsonl:2: query 'q7' is not in the collection: give its text in \"query\""),
    ({"query_id": "q1", "shown": [{"doc_id": "d1", "position": 2}]}, "clicks.jsonl:2: positions must run 1..1"),
])
def test_a_bad_line_writes_nothing(collection, tmp_path, bad, reason):
    path = _log(tmp_path, [_search("q1", ["d1", "d2"], ["d1"], text="x"), bad])
    with pytest.raises(ImportFileError) as refused:
        import_click_log(collection=collection, path=path)
    assert str(refused.value).startswith(reason)
    assert not ClickCount.objects.exists() and not ClickLog.objects.exists()
    assert Candidate.objects.filter(collection=collection).count() == 0 and Query.objects.count() == 1


def test_click_labels_are_a_source_with_grades_cut_at_peoples_shares(collection, tmp_path, annotator):
    # d1 is clicked wherever it is shown, d3 never; both move between positions 1 and 3
    searches = []
    for i in range(40):
        order = ["d1", "d2", "d3"] if i % 2 else ["d3", "d2", "d1"]
        searches.append(_search("q1", order, ["d1"] + (["d2"] if i % 4 == 0 else [])))
    import_click_log(collection=collection, path=_log(tmp_path, searches))
    labels = {j.candidate.document.external_id: j.grade
              for j in Judgment.objects.filter(source=CLICK_SOURCE).select_related("candidate__document")}
    assert labels["d1"] > labels["d2"] > labels["d3"]
    assert all(j.annotator is None for j in Judgment.objects.filter(source=CLICK_SOURCE))

    # people then grade: mostly 0s, so the cut moves and a refit revises the labels it changes
    d3 = Candidate.objects.get(query__external_id="q1", document__external_id="d3")
    for n in range(30):
        Judgment.objects.create(collection=collection, candidate=d3, annotator=annotator if n == 0 else
                                type(annotator).objects.create_user(f"p{n}"), grade=0 if n < 25 else 3)
    fit = fit_click_labels(collection=collection)
    assert fit.labelled == 3 and fit.model.identified
    revised = JudgmentRevision.objects.filter(changed_by_source=CLICK_SOURCE)
    assert revised.exists() and all(r.reason == "click model refit" for r in revised)


def test_a_pair_seen_too_little_gets_no_click_label(collection, tmp_path):
    # shown once, at the bottom of a long list where few look
    shown = ["d1", "d2", "d3", "d4"]
    searches = [_search("q1", shown, ["d1"]) for _ in range(3)]
    import_click_log(collection=collection, path=_log(tmp_path, searches))
    fit = fit_click_labels(collection=collection)
    examined = dict(zip(range(fit.pairs), fit.model.examinations))
    assert fit.labelled == sum(e >= MIN_EXAMINATIONS for e in examined.values())


def test_import_data_takes_click_logs_all_or_nothing_with_the_corpus(tmp_path, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": f"d{d}", "text": f"doc {d}"}) + "\n" for d in range(1, 4)))
    bad = _log(tmp_path, [_search("q1", ["d1", "d2"], ["d1"], text="q"), _search("q1", ["d1", "d7"])], "bad.jsonl")
    with pytest.raises(CommandError, match=r"bad.jsonl:2: unknown document 'd7'"):
        call_command("import_data", "cl", "--corpus", str(corpus), "--clicks", str(bad))
    assert not Collection.objects.filter(slug="cl").exists()  # the corpus went back out with it

    good = _log(tmp_path, [_search("q1", ["d1", "d2"] if i % 2 else ["d2", "d1"], ["d1"], text="q") for i in range(20)])
    call_command("import_data", "cl", "--corpus", str(corpus), "--clicks", str(good), "--json")
    totals = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert totals == {"collection": "cl", "documents": 3, "queries": 1, "candidates": 2, "judgments": 2}
    call_command("import_data", "cl", "--clicks", str(good))
    assert "already imported" in capsys.readouterr().err
    assert ClickLog.objects.count() == 1
