"""Each input format lands as the right rows: documents, queries, candidates with sources, judgments."""
from __future__ import annotations

import hashlib

import pytest

from annotate.importing import import_files
from annotate.models import Candidate, Collection, Document, Judgment, Query
from annotate.splits import split_for

from .conftest import args_for, import_data, write_jsonl, write_text

pytestmark = pytest.mark.django_db


def candidate(query: str, doc: str) -> Candidate:
    return Candidate.objects.get(query__external_id=query, document__external_id=doc)


def test_beir_corpus_and_queries_keep_title_text_and_other_fields_as_metadata(small_collection):
    totals = import_data("small", *args_for({k: small_collection[k] for k in ("corpus", "queries")}))

    assert totals == {"collection": "small", "documents": 3, "queries": 2, "candidates": 0, "judgments": 0}
    flea = Document.objects.get(external_id="d1")
    assert (flea.title, flea.text, flea.metadata) == ("Flea", "A flea lives up to a year.", {"url": "http://x/1"})
    assert len(flea.content_hash) == 64
    assert Document.objects.get(external_id="3").text == "Declaratory judgment defined."  # integer _id -> "3"
    q2 = Query.objects.get(external_id="q2")
    assert q2.metadata == {"lang": "en"} and q2.split == split_for(q2.text)
    assert Collection.objects.get(slug="small").corpus_version == 1


def test_qrels_become_candidates_and_non_human_judgments_named_after_the_file(small_collection):
    import_data("small", *args_for({k: small_collection[k] for k in ("corpus", "queries", "qrels")}))

    judgment = Judgment.objects.get(candidate=candidate("q2", "d2"))
    assert (judgment.grade, judgment.source, judgment.annotator) == (2, "qrels:qrels.tsv", None)
    assert candidate("q1", "d1").sources == {"qrels": {}}
    assert Judgment.objects.count() == 3


def test_trec_qrels_are_detected_without_a_header(small_collection, tmp_path):
    qrels = write_text(tmp_path / "dl.qrels", "q1 0 d1 1\nq2 0 d2 3\n")
    import_data("small", *args_for({k: small_collection[k] for k in ("corpus", "queries")}), "--qrels", str(qrels))

    assert sorted(Judgment.objects.values_list("grade", flat=True)) == [1, 3]
    assert set(Judgment.objects.values_list("source", flat=True)) == {"qrels:dl.qrels"}


def test_run_rows_become_candidates_with_rank_and_score_beside_other_sources(small_collection):
    totals = import_data("small", *args_for(small_collection))

    assert totals["candidates"] == 4  # three qrels pairs, and (q1, 3) from the run only
    assert candidate("q1", "d1").sources == {"qrels": {}, "run:bm25": {"rank": 1, "score": 12.5}}
    assert candidate("q1", "3").sources == {"run:bm25": {"rank": 2, "score": 7.25}}
    assert not Judgment.objects.filter(candidate=candidate("q1", "3")).exists()


def test_a_second_run_tag_is_merged_in_and_never_drops_the_first(small_collection, tmp_path):
    import_data("small", *args_for(small_collection))
    dense = write_text(tmp_path / "dense.trec", "q1 Q0 d1 4 0.5 dense\n")
    import_data("small", "--run", str(dense))

    assert candidate("q1", "d1").sources == {
        "qrels": {}, "run:bm25": {"rank": 1, "score": 12.5}, "run:dense": {"rank": 4, "score": 0.5}
    }


def test_pointwise_text_rows_get_stable_ids_from_a_hash_of_the_text(tmp_path):
    labels = write_jsonl(tmp_path / "point.jsonl", [
        {"query": "北京天气", "doc": "北京今日晴", "label": 3},
        {"query": "北京天气", "doc": "上海下雨", "label": 0},
    ])
    totals = import_data("seed", "--labels", str(labels))

    query_id = "q-" + hashlib.sha256("北京天气".encode()).hexdigest()[:16]
    doc_id = "d-" + hashlib.sha256("北京今日晴".encode()).hexdigest()[:16]
    assert totals == {"collection": "seed", "documents": 2, "queries": 1, "candidates": 2, "judgments": 2}
    judgment = Judgment.objects.get(candidate=candidate(query_id, doc_id))
    assert (judgment.grade, judgment.source) == (3, "labels:point.jsonl")
    assert candidate(query_id, doc_id).sources == {"labels": {}}


def test_pairwise_rows_give_candidates_with_roles_and_no_grade(tmp_path):
    labels = write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": "python 列表去重", "positive": "用 set 去重", "negative": "列表排序"},
        {"query": "python 列表去重", "positive": "dict.fromkeys 保序去重", "negative": ["用 set 去重"]},
    ])
    totals = import_data("pairs", "--labels", str(labels))

    assert totals == {"collection": "pairs", "documents": 3, "queries": 1, "candidates": 3, "judgments": 0}
    roles = {c.document.text: c.sources["labels"]["role"] for c in Candidate.objects.select_related("document")}
    assert roles == {"用 set 去重": "both", "列表排序": "negative", "dict.fromkeys 保序去重": "positive"}


def test_listwise_export_rows_use_their_ids_and_ignore_extra_fields(tmp_path):
    labels = write_jsonl(tmp_path / "export.jsonl", [
        {"query_id": "q1", "query": "南京旅游必去", "split": "train", "candidates": [
            {"doc_id": "d1", "doc": "中山陵介绍", "label": 2, "soft_label": 0.72, "weight": 0.8, "sources": ["bm25"]},
            {"doc_id": "d2", "doc": "夫子庙小吃"},
        ]},
    ])
    totals = import_data("nj", "--labels", str(labels))

    assert totals == {"collection": "nj", "documents": 2, "queries": 1, "candidates": 2, "judgments": 1}
    assert Judgment.objects.get().grade == 2
    assert Query.objects.get().external_id == "q1" and Document.objects.get(external_id="d2").text == "夫子庙小吃"


def test_several_labels_files_keep_one_judgment_source_each(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", [{"query": "q", "doc": "d", "label": 1}])
    second = write_jsonl(tmp_path / "b.jsonl", [{"query": "q", "doc": "d", "label": 2}])
    import_data("two", "--labels", str(first), str(second))

    assert dict(Judgment.objects.values_list("source", "grade")) == {"labels:a.jsonl": 1, "labels:b.jsonl": 2}


def test_labels_may_name_documents_of_the_corpus_by_id_only(small_collection, tmp_path):
    labels = write_jsonl(tmp_path / "ids.jsonl", [{"query_id": "q1", "doc_id": "d2", "label": 1}])
    totals = import_data("small", *args_for(small_collection), "--labels", str(labels))

    assert totals["documents"] == 3 and totals["judgments"] == 4
    assert Judgment.objects.get(source="labels:ids.jsonl").candidate == candidate("q1", "d2")


def test_the_service_reports_progress_in_bytes_up_to_the_total(small_collection):
    calls = []
    import_files(collection_slug="small", **small_collection, progress=lambda done, total: calls.append((done, total)))

    total = sum(path.stat().st_size for path in small_collection.values())
    assert calls and calls[-1] == (total, total)
    assert all(done <= total for done, _ in calls)


def test_the_same_query_text_under_two_ids_lands_in_one_split(small_collection, tmp_path):
    texts = [f"Question number {n} about fleas" for n in range(30)]
    # the second copy differs only in what normalisation removes: case, spacing, full-width forms
    variants = [f"  {t.upper().replace(' ', '   ')}\t".replace("1", "\uff11") for t in texts]
    queries = write_jsonl(tmp_path / "queries.jsonl", [{"_id": f"a{n}", "text": t} for n, t in enumerate(texts)]
                          + [{"_id": f"b{n}", "text": t} for n, t in enumerate(variants)])
    import_data("small", "--corpus", str(small_collection["corpus"]), "--queries", str(queries))

    split = dict(Query.objects.values_list("external_id", "split"))
    assert all(split[f"a{n}"] == split[f"b{n}"] == split_for(texts[n]) for n in range(30))
    assert {"train", "dev"} <= set(split.values())  # a real spread, not one bucket for everything


def test_a_reimported_query_keeps_the_split_it_was_stored_with(small_collection, tmp_path):
    import_data("small", *args_for({k: small_collection[k] for k in ("corpus", "queries")}))
    Query.objects.filter(external_id="q1").update(split="test")  # as stored by an earlier version
    queries = write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "how long does a dog flea live"}])
    import_data("small", "--queries", str(queries))
    stored = Query.objects.get(external_id="q1")
    assert stored.text == "how long does a dog flea live" and stored.split == "test"
