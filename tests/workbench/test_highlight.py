import re

import pytest

from mining.text.highlight import highlight, query_terms


def test_english_terms_are_marked_as_whole_words_and_text_is_escaped():
    html = str(highlight("Cats <b>and</b> category: a cat.", ["cat", "cats"]))
    assert "<mark>Cats</mark>" in html and "<mark>cat</mark>." in html
    assert "category" in html and "<mark>cat</mark>egory" not in html
    assert "&lt;b&gt;" in html


def test_chinese_terms_are_marked_inside_running_text():
    terms = query_terms("南京旅游必去")
    html = str(highlight("南京的旅游景点很多，中山陵必去。", terms))
    assert "<mark>南京</mark>" in html and "<mark>旅游</mark>" in html


def test_mixed_latin_and_chinese():
    terms = query_terms("python 列表去重")
    html = str(highlight("用python给列表去重的三种方法", terms))
    assert "<mark>python</mark>" in html and "<mark>列表</mark>" in html


def test_script_in_a_query_term_is_escaped():
    html = str(highlight("x <script>alert(1)</script> y", query_terms("<script>")))
    assert "<script>" not in html


@pytest.mark.parametrize("query, document, marked", [
    # jieba cuts 列表去重 into 列表 / 去 / 重: the single characters are joined back into 去重.
    ("python 列表去重", "python中如何对列表进行去重操作", ["python", "列表", "去重"]),
    # Latin words match by stem: boil -> Boiled, boiling; egg -> eggs, not Eggplant.
    ("how long to boil an egg", "Boiled eggs take 10 minutes; boiling an egg longer. Eggplant.",
     ["Boiled", "eggs", "boiling", "egg"]),
])
def test_query_words_are_marked_where_a_reader_sees_them(query, document, marked):
    html = highlight(document, query_terms(query))
    assert re.findall(r"<mark>(.*?)</mark>", html) == marked
