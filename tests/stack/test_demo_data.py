"""The demo file: a realistic bilingual mix that follows the guidelines' format and scale."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from annotate.demo import DEMO_FILE

CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def demo_queries() -> list[dict]:
    return [json.loads(line) for line in DEMO_FILE.read_text(encoding="utf-8").splitlines()]


def language(text: str) -> str:
    has_cjk, has_latin = bool(CJK.search(text)), bool(LATIN.search(text))
    return "mixed" if has_cjk and has_latin else "zh" if has_cjk else "en"


def test_about_twenty_queries_half_chinese_half_english_some_mixed(demo_queries):
    assert 18 <= len(demo_queries) <= 24
    languages = Counter(language(q["query"]) for q in demo_queries)
    assert languages["zh"] >= 7 and languages["en"] >= 7 and languages["mixed"] >= 2, languages


def test_ids_are_stable_and_unique(demo_queries):
    query_ids = [q["query_id"] for q in demo_queries]
    doc_ids = [c["doc_id"] for q in demo_queries for c in q["candidates"]]
    assert all(re.fullmatch(r"demo-q\d{2}", i) for i in query_ids)
    assert all(re.fullmatch(r"demo-d\d{3}", i) for i in doc_ids)
    assert len(set(query_ids)) == len(query_ids) and len(set(doc_ids)) == len(doc_ids)


def test_each_query_has_ten_to_twenty_graded_candidates_of_every_kind(demo_queries):
    for query in demo_queries:
        grades = [c["label"] for c in query["candidates"]]
        assert 10 <= len(grades) <= 20, query["query_id"]
        assert set(grades) <= {0, 1, 2, 3} and all(isinstance(g, int) for g in grades)
        # A realistic list: something that answers, and hard or plain negatives.
        assert max(grades) >= 2 and 0 in grades and 1 in grades, query["query_id"]


def test_the_file_order_does_not_give_the_grades_away(demo_queries):
    sorted_lists = sum(
        [c["label"] for c in q["candidates"]] == sorted((c["label"] for c in q["candidates"]), reverse=True)
        for q in demo_queries
    )
    assert sorted_lists <= 2


def test_documents_have_realistic_length_and_include_other_language_negatives(demo_queries):
    lengths = [len(c["doc"]) for q in demo_queries for c in q["candidates"]]
    assert min(lengths) >= 20 and max(lengths) <= 600
    for query in demo_queries:
        if language(query["query"]) == "mixed":
            continue
        other = [c for c in query["candidates"] if language(c["doc"]) not in {language(query["query"]), "mixed"}]
        # Guidelines: a document in another language than a one-language query is at most 1.
        assert all(c["label"] <= 1 for c in other), query["query_id"]
