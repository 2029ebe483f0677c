"""Acceptance on real data: trec-dl19 with 3 simulated annotators, every format equal to a reference
computed here from the raw judgments in plain Python (not with annotate/export/aggregation.py), the same
file twice, and a listwise export that imports back into a new collection."""
from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotate.export.services import create_snapshot
from annotate.importing import import_files
from annotate.models import (
    Adjudication,
    AgreementReport,
    Candidate,
    Collection,
    Document,
    Judgment,
    Query,
)
from annotate.simulation import SimulationParams, simulate_annotators


@pytest.fixture
def dl19(db, datasets):
    files = datasets / "trec-dl19"
    import_files(collection_slug="dl19", corpus=files / "corpus.jsonl", queries=files / "queries.jsonl",
                 qrels=files / "qrels.tsv", run=files / "run.bm25.trec")
    collection = Collection.objects.get(slug="dl19")
    simulate_annotators(collection=collection, params=SimulationParams(annotators=3, noise=0.25, seed=19, random_share=0.2))
    return collection


def reliabilities_in_report(collection) -> dict[str, float]:
    """A report rating two of the three annotators (one by id, one by name); the third is unrated."""
    users = {u.username: u for u in get_user_model().objects.filter(username__startswith="sim-dl19-")}
    AgreementReport.objects.create(collection=collection, per_annotator=[
        {"annotator_id": users["sim-dl19-1"].pk, "reliability": 0.9},
        {"annotator": "sim-dl19-2", "reliability": 0.55},
    ])
    return {users["sim-dl19-1"].pk: 0.9, users["sim-dl19-2"].pk: 0.55}


# --- the reference ---------------------------------------------------------------------------
def reference_groups(collection, reliability: dict[int, float]) -> list[dict]:
    """Query groups as the README's "Weights" section defines them, from the raw rows."""
    grades = defaultdict(lambda: {"human": [], "prior": []})
    for candidate, annotator, grade, skipped, withdrawn in Judgment.objects.filter(collection=collection).values_list(
            "candidate_id", "annotator_id", "grade", "skipped", "withdrawn"):
        if grade is None or skipped or withdrawn:
            continue
        if annotator is None:
            grades[candidate]["prior"].append(grade)
        else:
            grades[candidate]["human"].append((grade, reliability.get(annotator, 1.0)))
    final = {}
    for candidate, grade in Adjudication.objects.filter(collection=collection).order_by("created_at", "pk").values_list(
            "candidate_id", "grade"):
        final[candidate] = grade  # the latest wins
    queries = defaultdict(list)
    for pk, qid, qtext, split, did, dtext, sources in Candidate.objects.filter(collection=collection).values_list(
            "pk", "query__external_id", "query__text", "query__split", "document__external_id", "document__text", "sources"):
        human, prior = grades[pk]["human"], grades[pk]["prior"]
        if pk in final:
            record = {"label": final[pk], "soft_label": final[pk] / 3, "weight": 1.0, "n_judgments": len(human)}
        else:
            judges = human or [(g, 1.0) for g in prior]
            if not judges:
                continue
            total = sum(r for _, r in judges)
            label = min(g for g in range(4) if sum(r for x, r in judges if x <= g) >= total / 2 - 1e-12)
            agreement = sum(r * (1 - abs(g - label) / 3) for g, r in judges) / total
            record = {"label": label, "soft_label": sum(g * r for g, r in judges) / total / 3,
                      "weight": agreement * (1 - math.exp(-total)), "n_judgments": len(judges)}
        ranks = [detail["rank"] for detail in sources.values()
                 if isinstance(detail, dict) and type(detail.get("rank")) is int and detail["rank"] >= 1]
        queries[(qid, qtext, split)].append({"doc_id": did, "doc": dtext, **record, "sources": sorted(sources),
                                             **({"retrieval_rank": min(ranks)} if ranks else {})})
    return [{"query_id": qid, "query": qtext, "split": split, "candidates": sorted(cands, key=lambda c: c["doc_id"])}
            for (qid, qtext, split), cands in sorted(queries.items())]


def reference_lines(fmt: str, groups: list[dict]) -> list:
    if fmt == "listwise":
        return groups
    if fmt == "pointwise":
        return [{"query_id": g["query_id"], "query": g["query"], "doc_id": c["doc_id"], "doc": c["doc"],
                 "label": c["label"], "weight": c["weight"]} for g in groups for c in g["candidates"]]
    if fmt == "qrels":
        return [f"{g['query_id']} 0 {c['doc_id']} {c['label']}" for g in groups for c in g["candidates"]]
    if fmt == "pairwise":
        lines = []
        for g in groups:
            pairs = [(p, n) for p in g["candidates"] for n in g["candidates"] if p["label"] > n["label"]]
            pairs.sort(key=lambda pn: (-(pn[0]["label"] - pn[1]["label"]), -pn[0]["weight"] * pn[1]["weight"],
                                       pn[0]["doc_id"], pn[1]["doc_id"]))
            lines += [{"query_id": g["query_id"], "query": g["query"], "positive_id": p["doc_id"], "positive": p["doc"],
                       "negative_id": n["doc_id"], "negative": n["doc"], "weight": p["weight"] * n["weight"],
                       "margin": p["label"] - n["label"]} for p, n in pairs[:100]]
        return lines
    if fmt == "flagembedding":
        lines = []
        for g in groups:
            pos = [c for c in g["candidates"] if c["label"] >= 2]
            neg = [c for c in g["candidates"] if c["label"] < 2]
            if pos and neg:
                lines.append({"query": g["query"], "pos": [c["doc"] for c in pos], "neg": [c["doc"] for c in neg],
                              "pos_scores": [c["soft_label"] for c in pos], "neg_scores": [c["soft_label"] for c in neg]})
        return lines
    raise AssertionError(fmt)


def assert_same(actual, expected, where="line"):
    if isinstance(expected, float):
        assert actual == pytest.approx(expected, abs=2e-6), where
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), where  # same keys, same order
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{i}]")
    else:
        assert actual == expected and type(actual) is type(expected), where


def read_lines(path: Path, fmt: str) -> list:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = text.splitlines()
    return lines if fmt == "qrels" else [json.loads(line) for line in lines]


# --- the tests -------------------------------------------------------------------------------
def test_every_format_from_dl19_with_three_simulated_annotators_equals_the_reference(dl19):
    reliability = reliabilities_in_report(dl19)
    some = list(Judgment.objects.filter(collection=dl19, annotator__isnull=False).order_by("pk")[:3])
    Judgment.objects.filter(pk=some[0].pk).update(grade=None, skipped=True, skip_reason="unreadable")
    Judgment.objects.filter(pk=some[1].pk).update(grade=None, withdrawn=True)
    staff = get_user_model().objects.create_user("boss", is_staff=True)
    Adjudication.objects.create(collection=dl19, candidate_id=some[2].candidate_id, grade=1, reason="a", decided_by=staff)
    Adjudication.objects.create(collection=dl19, candidate_id=some[2].candidate_id, grade=3, reason="b", decided_by=staff)

    groups = reference_groups(dl19, reliability)
    assert len(groups) == 43 and sum(len(g["candidates"]) for g in groups) == 2257
    for fmt in ("listwise", "pointwise", "pairwise", "qrels", "flagembedding"):
        # The reliability-weighted median (the annotator model has its own tests: test_annotator_export.py).
        snapshot = create_snapshot(collection=dl19, format=fmt, params={"method": "median"})
        assert snapshot.status == "done", snapshot.error
        assert_same(read_lines(Path(snapshot.file_path), fmt), reference_lines(fmt, groups), fmt)


def test_the_same_parameters_over_unchanged_data_give_a_byte_identical_file(dl19, tmp_path):
    first = create_snapshot(collection=dl19, format="listwise", params={"split": "train", "min_weight": 0.3})
    second = create_snapshot(collection=dl19, format="listwise", params={"min_weight": "0.3", "split": "train"})
    assert first.pk != second.pk and Path(first.file_path) != Path(second.file_path)
    content = Path(first.file_path).read_bytes()
    assert content == Path(second.file_path).read_bytes()
    assert first.sha256 == second.sha256 == hashlib.sha256(content).hexdigest()
    assert first.size_bytes == len(content)
    assert first.file_path == str(Path(first.file_path).parent / f"{first.pk}.jsonl")
    assert Path(first.file_path).parent.name == "dl19" and Path(first.file_path).parent.parent.name == "exports"
    assert first.n_judgments == Judgment.objects.filter(collection=dl19, annotator__isnull=False).count()
    assert first.counts["queries"] == len(content.splitlines()) and first.params["min_weight"] == 0.3
    assert {json.loads(line)["split"] for line in content.splitlines()} == {"train"}
    # A change in the data changes the file.
    judgment = Judgment.objects.filter(collection=dl19, annotator__isnull=False,
                                       candidate__query__split="train").first()
    Judgment.objects.filter(pk=judgment.pk).update(grade=(judgment.grade + 2) % 4)
    third = create_snapshot(collection=dl19, format="listwise", params={"split": "train", "min_weight": 0.3})
    assert third.sha256 != first.sha256


def test_an_exported_listwise_file_imports_back_with_the_same_queries_documents_and_labels(dl19, tmp_path):
    out = tmp_path / "dl19.listwise.jsonl"
    call_command("export_data", "dl19", "--format", "listwise", "--out", str(out), verbosity=0)
    call_command("import_data", "dl19-copy", "--labels", str(out), verbosity=0)
    copy = Collection.objects.get(slug="dl19-copy")
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    labels = {(q["query_id"], c["doc_id"]): c["label"] for q in exported for c in q["candidates"]}
    imported = dict(((q, d), g) for q, d, g in Judgment.objects.filter(collection=copy).values_list(
        "candidate__query__external_id", "candidate__document__external_id", "grade"))
    assert imported == labels
    queries = {q["query_id"]: q["query"] for q in exported}
    assert dict(Query.objects.filter(collection=copy).values_list("external_id", "text")) == queries
    original_docs = dict(Document.objects.filter(collection=dl19).values_list("external_id", "text"))
    copied_docs = dict(Document.objects.filter(collection=copy).values_list("external_id", "text"))
    assert copied_docs == {doc_id: original_docs[doc_id] for _, doc_id in labels}
    assert {q.external_id: q.split for q in Query.objects.filter(collection=copy)} == {q["query_id"]: q["split"] for q in exported}
