import subprocess
import sys

import pytest

from mining.text.tokenize import METHODS, normalize, tokenize, tokenize_many


def test_normalisation_folds_full_width_and_case():
    assert normalize("ＢＭ２５ Ｓｅａｒｃｈ") == "bm25 search"
    assert tokenize("ＢＭ２５ Ｓｅａｒｃｈ", method="whitespace") == ["bm25", "search"]


def test_english_words_keep_digits_and_drop_light_stopwords():
    assert tokenize("What is the COVID-19 incubation period?") == ["covid", "19", "incubation", "period"]


def test_whitespace_method_keeps_every_word_and_cjk_runs_whole():
    assert tokenize("What is 南京旅游", method="whitespace") == ["what", "is", "南京旅游"]


def test_bigram_method_gives_characters_and_bigrams_of_each_cjk_run():
    assert tokenize("宝宝发烧", method="bigram") == ["宝", "宝", "发", "烧", "宝宝", "宝发", "发烧"]
    assert tokenize("一", method="bigram") == ["一"]


def test_mixed_text_splits_latin_digits_and_cjk():
    tokens = tokenize("10个月宝宝CT检查", method="bigram")
    assert tokens[0] == "10"
    assert "ct" in tokens and "个月" in tokens and "检查" in tokens


def test_jieba_method_gives_characters_then_precise_words():
    tokens = tokenize("宝宝十个月没长牙怎么办", method="jieba")
    assert tokens[:11] == list("宝宝十个月没长牙怎么办")
    assert {"宝宝", "长牙", "怎么办"} <= set(tokens[11:])
    # A character that is a word on its own counts twice: as character and as word.
    assert tokens.count("没") == 2


def test_auto_is_one_function_for_documents_and_queries():
    text = "宝宝十个月没长牙怎么办 teething"
    assert tokenize(text) == tokenize_many([text])[0]
    assert tokenize(text) == tokenize(text, method="auto")


def test_punctuation_and_empty_text_give_no_tokens():
    for method in METHODS:
        assert tokenize("", method=method) == []
        assert tokenize(" ，。!? -- ", method=method) == []


def test_unknown_method_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown tokenizer method 'stem'"):
        tokenize("x", method="stem")
    with pytest.raises(ValueError, match="unknown tokenizer method"):
        tokenize_many(["x"], method="stem")


def test_jieba_loads_quietly(tmp_path):
    # A fresh interpreter: jieba's first use must print nothing and cache under DATA_DIR.
    code = "from mining.text.tokenize import tokenize; print(tokenize('南京旅游', method='jieba'))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
        check=True,
    )
    assert result.stderr == ""
    assert "南京" in result.stdout
    assert list((tmp_path / "cache" / "jieba").iterdir())
