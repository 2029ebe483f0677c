"""Export filters: what each keeps and drops, and a clear error naming any bad value."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotate.export.filters import ExportParamsError, parse_params
from annotate.export.services import ExportFailed, create_snapshot
from annotate.models import AgreementReport, Candidate, ExportSnapshot, Judgment, Query
from annotate.simulation import SimulationParams, simulate_annotators


def exported(collection, fmt="listwise", **params) -> dict:
    """(query id, doc id) -> candidate record of a listwise export with these parameters."""
    snapshot = create_snapshot(collection=collection, format=fmt, params=params)
    lines = [json.loads(line) for line in Path(snapshot.file_path).read_text().splitlines()]
    return {(q["query_id"], c["doc_id"]): c for q in lines for c in q["candidates"]}


def qrels(collection) -> dict:
    return {(q, d): g for q, d, g in Judgment.objects.filter(collection=collection, annotator__isnull=True).values_list(
        "candidate__query__external_id", "candidate__document__external_id", "grade")}


def judge(candidate, user, grade, version="v1"):
    return Judgment.objects.create(collection=candidate.collection, candidate=candidate, annotator=user, grade=grade,
                                   guideline_version=version)


@pytest.fixture
def people(db):
    User = get_user_model()
    return [User.objects.create_user(f"person{i}") for i in range(3)]


def pair(collection, query_id="q000", doc_id="d000-00") -> Candidate:
    return Candidate.objects.get(collection=collection, query__external_id=query_id, document__external_id=doc_id)


def test_without_people_the_imported_labels_are_exported_with_one_judgment_each(graded_collection):
    collection = graded_collection()
    records = exported(collection)
    assert {k: r["label"] for k, r in records.items()} == qrels(collection)
    assert {r["n_judgments"] for r in records.values()} == {1} and {tuple(r["sources"]) for r in records.values()} == {("qrels",)}


def test_min_judgments_keeps_pairs_with_enough_grades(graded_collection, people):
    collection = graded_collection()
    judge(pair(collection), people[0], 3)
    judge(pair(collection), people[1], 3)
    judge(pair(collection, doc_id="d000-01"), people[0], 1)
    assert set(exported(collection, min_judgments=2)) == {("q000", "d000-00")}
    assert len(exported(collection, min_judgments=1)) == 48


def test_min_weight_drops_uncertain_pairs(graded_collection, people):
    collection = graded_collection()
    judge(pair(collection), people[0], 3)
    judge(pair(collection), people[1], 0)
    judge(pair(collection, doc_id="d000-01"), people[0], 2)
    judge(pair(collection, doc_id="d000-01"), people[1], 2)
    records = exported(collection)
    doubtful, sure = records[("q000", "d000-00")]["weight"], records[("q000", "d000-01")]["weight"]
    assert doubtful < sure  # two people disagreeing are less sure than two agreeing
    bar = (doubtful + sure) / 2
    assert ("q000", "d000-00") not in exported(collection, min_weight=bar)
    assert ("q000", "d000-01") in exported(collection, min_weight=bar)
    assert all(r["weight"] >= bar for r in exported(collection, min_weight=bar).values())


def test_min_query_alpha_drops_queries_the_latest_report_lists_below_it(graded_collection):
    collection = graded_collection()
    q3 = Query.objects.get(collection=collection, external_id="q003")
    AgreementReport.objects.create(collection=collection, per_query=[{"query_id": "q000", "alpha": 0.9}])
    AgreementReport.objects.create(collection=collection, per_query=[
        {"query_id": "q001", "alpha": 0.1}, {"query_id": q3.pk, "alpha": 0.2}, {"query_id": "q002", "alpha": 0.6}])
    queries = {q for q, _ in exported(collection, min_query_alpha=0.5)}
    assert queries == {f"q00{i}" for i in range(8)} - {"q001", "q003"}
    assert len({q for q, _ in exported(collection)}) == 8  # no threshold: the report is not consulted


def test_guideline_version_and_date_range_select_peoples_judgments(graded_collection, people):
    collection = graded_collection()
    old = judge(pair(collection), people[0], 3, version="v1")
    new = judge(pair(collection), people[1], 1, version="v2")
    Judgment.objects.filter(pk=old.pk).update(updated_at=dt.datetime(2024, 1, 10, 12, tzinfo=dt.timezone.utc))
    Judgment.objects.filter(pk=new.pk).update(updated_at=dt.datetime(2024, 3, 5, 12, tzinfo=dt.timezone.utc))
    key = ("q000", "d000-00")
    assert (exported(collection, guideline_version="v2")[key]["label"], exported(collection, guideline_version="v2")[key]["n_judgments"]) == (1, 1)
    assert exported(collection, guideline_version="v1")[key]["label"] == 3
    assert exported(collection, since="2024-02-01")[key]["label"] == 1
    assert exported(collection, until="2024-01-10")[key]["label"] == 3  # a date covers its whole day
    assert exported(collection, since="2024-01-11", until="2024-03-04T23:59:59")[key]["label"] == qrels(collection)[key]


def test_gold_candidates_carry_their_gold_grade_and_can_be_left_out(graded_collection):
    collection = graded_collection()
    Candidate.objects.filter(pk=pair(collection).pk).update(is_gold=True, gold_grade=3)
    key = ("q000", "d000-00")
    assert (exported(collection)[key]["label"], exported(collection)[key]["weight"]) == (3, 1.0)
    assert key not in exported(collection, include_gold=False)
    assert len(exported(collection, include_gold="false")) == 47


def test_simulated_annotators_can_be_left_out(graded_collection):
    collection = graded_collection()
    simulate_annotators(collection=collection, params=SimulationParams(annotators=2, noise=1.0, seed=1))
    truth = qrels(collection)
    with_simulated = {k: r["label"] for k, r in exported(collection).items()}
    without = {k: r["label"] for k, r in exported(collection, include_simulated=False).items()}
    assert without == truth and all(with_simulated[k] != truth[k] for k in truth if truth[k] in (0, 3))


def test_split_and_only_with_positive_select_queries(graded_collection):
    collection = graded_collection(queries=30, docs_per_query=2, seed=4)
    splits = dict(Query.objects.filter(collection=collection).values_list("external_id", "split"))
    for split in ("train", "dev", "test"):
        assert {q for q, _ in exported(collection, split=split)} == {q for q, s in splits.items() if s == split}
    truth = qrels(collection)
    with_positive = {q for (q, _), g in truth.items() if g >= 2}
    assert with_positive != set(splits)
    assert {q for q, _ in exported(collection, only_with_positive=True)} == with_positive
    assert {q for q, _ in exported(collection, only_with_positive=True, positive_grade=3)} == {q for (q, _), g in truth.items() if g == 3}


def test_pairwise_is_bounded_per_query_and_takes_the_clearest_pairs_first(graded_collection):
    collection = graded_collection(queries=2, docs_per_query=12, seed=8)
    snapshot = create_snapshot(collection=collection, format="pairwise", params={"max_pairs_per_query": 5})
    lines = [json.loads(line) for line in Path(snapshot.file_path).read_text().splitlines()]
    for query in ("q000", "q001"):
        mine = [line for line in lines if line["query_id"] == query]
        assert len(mine) == 5
        assert [line["margin"] for line in mine] == sorted((line["margin"] for line in mine), reverse=True)
        assert mine[0]["margin"] == 3 and all(line["margin"] > 0 for line in mine)


def test_an_id_with_whitespace_fails_a_qrels_export_and_leaves_no_file(graded_collection, settings):
    collection = graded_collection()
    Query.objects.filter(collection=collection, external_id="q004").update(external_id="q 004")
    with pytest.raises(ExportFailed, match="query id 'q 004'.*whitespace"):
        create_snapshot(collection=collection, format="qrels", params={})
    failed = ExportSnapshot.objects.get(collection=collection)
    assert failed.status == "failed" and "whitespace" in failed.error and not failed.file_path
    assert list((Path(settings.DATA_DIR) / "exports" / "small").iterdir()) == []
    assert create_snapshot(collection=collection, format="listwise", params={}).status == "done"


@pytest.mark.parametrize("params, name", [
    ({"split": "holdout"}, "split"),
    ({"method": "vote"}, "method"),
    ({"min_judgments": -1}, "min_judgments"),
    ({"min_judgments": "two"}, "min_judgments"),
    ({"min_judgments": 1.5}, "min_judgments"),
    ({"min_weight": 1.5}, "min_weight"),
    ({"min_weight": "nan"}, "min_weight"),
    ({"min_query_alpha": "high"}, "min_query_alpha"),
    ({"since": "yesterday"}, "since"),
    ({"since": "2024-05-02", "until": "2024-05-01"}, "since"),
    ({"include_gold": "maybe"}, "include_gold"),
    ({"include_simulated": 2}, "include_simulated"),
    ({"positive_grade": 4}, "positive_grade"),
    ({"tau": 0}, "tau"),
    ({"max_pairs_per_query": 0}, "max_pairs_per_query"),
    ({"min_wieght": 0.5}, "min_wieght"),
])
def test_a_bad_value_is_refused_with_the_parameter_named(params, name):
    with pytest.raises(ExportParamsError) as caught:
        parse_params(params)
    assert caught.value.name == name and str(caught.value).startswith(f"{name}: ")


def test_the_command_line_refuses_a_bad_filter_and_writes_nothing(graded_collection, tmp_path):
    graded_collection()
    out = tmp_path / "out.jsonl"
    with pytest.raises(CommandError, match="min_weight: must be <= 1.0"):
        call_command("export_data", "small", "--format", "listwise", "--out", str(out), "--min-weight", "2", verbosity=0)
    with pytest.raises(CommandError, match="since: must be an ISO date"):
        call_command("export_data", "small", "--format", "listwise", "--out", str(out), "--since", "May", verbosity=0)
    with pytest.raises(CommandError, match="no collection 'nope'"):
        call_command("export_data", "nope", "--format", "listwise", "--out", str(out), verbosity=0)
    assert not out.exists() and not ExportSnapshot.objects.exists()


def test_the_command_line_writes_the_snapshot_file_to_out(graded_collection, tmp_path, capsys):
    graded_collection()
    out = tmp_path / "train.jsonl"
    call_command("export_data", "small", "--format", "pointwise", "--out", str(out), "--split", "train",
                 "--no-simulated", "--json")
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    snapshot = ExportSnapshot.objects.get(pk=summary["snapshot"])
    assert out.read_bytes() == Path(snapshot.file_path).read_bytes() and summary["sha256"] == snapshot.sha256
    assert snapshot.params["split"] == "train" and snapshot.params["include_simulated"] is False
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
