"""Tokenisation for Chinese, English and mixed text — one function for indexing and querying.

`tokenize(text, method=...)` is used both when a collection's BM25 index is built and when its
queries are scored, so the two always agree. Every method first applies NFKC normalisation
(full-width ``ＡＢＣ１２３`` -> ``abc123``, compatibility ideographs folded) and lower-casing.

Methods (the `Collection.tokenizer` choices in annotate/models.py):

- ``jieba``: every CJK run gives its single characters plus jieba's precise-mode words;
  other text gives word tokens minus a light English stopword list.
- ``bigram``: every CJK run gives its single characters plus its character bigrams;
  other text as for ``jieba``. No dictionary, ~4x faster to index.
- ``auto``: the measured default, currently the same as ``jieba`` (figures below).
- ``whitespace``: lower-cased word tokens only, nothing dropped; a CJK run stays one token
  (for text that is already segmented).

English gets a deliberately simple analyser: maximal runs of letters and digits (``don't`` ->
``don``, ``t``; ``covid-19`` -> ``covid``, ``19``), no stemming.

Measured with bench/tokenize_quality.py: BM25Okapi (k1=1.5, b=0.75, eps=0.25, mining/text/bm25.py),
every query against the whole corpus; NDCG@10 with linear gain over the judged pairs,
recall@100 of the documents judged >= 2.

kuake-qtr-train (6,165 queries with a judged-relevant title, 23,880 titles)::

    CJK runs as                          NDCG@10  recall@100
    character bigrams                     0.7802      0.9628
    bigrams + characters                  0.8451      0.9844
    jieba precise words                   0.7666      0.9436
    jieba search-mode words               0.7821      0.9561
    jieba precise + characters (auto)     0.8637      0.9866
    jieba search + characters             0.8631      0.9870
    jieba search + characters, a char
      that is also a word counted once    0.8493      0.9852
    jieba precise + chars - 的了吗呢...     0.8664      0.9865

trec-dl19 (43 queries, 4,297 passages)::

    english words                         0.4332      0.9185
    english words - light stopwords       0.4451      0.9483

Single characters are what matters for Chinese (+0.06..0.10 NDCG@10 whatever the word cutter):
queries and titles phrase the same need differently and characters still match. With them,
jieba precise words beat bigrams by +0.019 NDCG@10 and +0.002 recall@100, so ``auto`` is
jieba + characters. Dropping a few Chinese function characters gains +0.003 NDCG@10 and loses
recall: not done. Dropping light English stopwords helps on trec-dl19 (+0.012 NDCG@10, +0.030
recall@100) because Okapi's idf floor gives words in most documents a positive weight, so it
is done (not in ``whitespace``). jieba is loaded lazily and silently, its cache under DATA_DIR.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path

METHODS = ("auto", "jieba", "bigram", "whitespace")

# Han ideographs (basic, extension A, compatibility, extensions B+ in plane 2/3), plus kana and
# hangul: scripts written without spaces, so a run of them must be segmented, not taken whole.
_CJK = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # extensions B..G
)
# A CJK run, or a run of word characters that are neither CJK nor the underscore.
_SEGMENTS = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>[^\W_{_CJK}]+)")
_WORDS = re.compile(r"[^\W_]+")

# A light list of English function words. BM25Okapi floors the idf of terms in more than half of
# the documents at epsilon * average idf (> 0), so such words add noise instead of nothing;
# dropping them measurably helps on trec-dl19 (module docstring).
ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were "
    "will with what which who how when where why do does did".split()
)

_jieba_lock = threading.Lock()
_jieba_tokenizer = None


def normalize(text: str) -> str:
    """NFKC + lower-case: the form every method tokenises."""
    return unicodedata.normalize("NFKC", text).lower()


def tokenize(text: str, *, method: str = "auto") -> list[str]:
    """Tokens of `text` for BM25; the same call serves documents and queries."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects str, got {type(text).__name__}")
    if method == "auto" or method == "jieba":
        return _segment(normalize(text), _cjk_chars_and_jieba, ENGLISH_STOPWORDS)
    if method == "bigram":
        return _segment(normalize(text), _cjk_chars_and_bigrams, ENGLISH_STOPWORDS)
    if method == "whitespace":
        return _WORDS.findall(normalize(text))
    raise ValueError(f"unknown tokenizer method {method!r}; expected one of {', '.join(METHODS)}")


def tokenize_many(texts: Iterable[str], *, method: str = "auto") -> list[list[str]]:
    """`tokenize` over many texts (documents of a collection, a batch of queries)."""
    if method not in METHODS:
        raise ValueError(f"unknown tokenizer method {method!r}; expected one of {', '.join(METHODS)}")
    return [tokenize(text, method=method) for text in texts]


def _segment(text: str, cut_cjk, stopwords: frozenset[str] = frozenset()) -> list[str]:
    """Word tokens outside CJK runs (minus `stopwords`), `cut_cjk(run)` for each CJK run."""
    tokens: list[str] = []
    for match in _SEGMENTS.finditer(text):
        run = match.group("cjk")
        if run is None:
            word = match.group("word")
            if word not in stopwords:
                tokens.append(word)
        else:
            tokens.extend(cut_cjk(run))
    return tokens


def _cjk_bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _cjk_chars_and_bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return list(run) + _cjk_bigrams(run)


def _cjk_jieba_precise(run: str) -> list[str]:
    return [word for word in _jieba().lcut(run, HMM=True) if word.strip()]


def jieba_search_words(run: str) -> list[str]:
    """jieba's search-mode words of one CJK run: 南京旅游 -> 南京, 旅游, 南京旅游."""
    return [word for word in _jieba().cut_for_search(run, HMM=True) if word.strip()]


def _cjk_chars_and_jieba(run: str) -> list[str]:
    # Single characters as well as words: a query and a title that phrase the same thing
    # differently ("宝宝十个月" / "10个月宝宝") still share characters where jieba cuts them
    # apart. A character that jieba keeps as a word on its own (牙, 痛) is emitted twice, as
    # character and as word, which weights it up; measured, that beats de-duplicating it.
    return list(run) + _cjk_jieba_precise(run)


_cache_dir: Path | None = None


def set_jieba_cache_dir(directory) -> None:
    """Where jieba's dictionary cache goes (set once by the mining app from DATA_DIR)."""
    global _cache_dir
    _cache_dir = Path(directory)


def _jieba():
    """A private jieba.Tokenizer, built on first use, silent, caching its dictionary under DATA_DIR."""
    global _jieba_tokenizer
    if _jieba_tokenizer is not None:
        return _jieba_tokenizer
    with _jieba_lock:
        if _jieba_tokenizer is None:
            import jieba

            # jieba logs "Building prefix dict ..." at DEBUG to stderr through its own handler.
            jieba.default_logger.setLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            cache_dir = _jieba_cache_dir()
            tokenizer.tmp_dir = str(cache_dir)
            tokenizer.initialize()
            _jieba_tokenizer = tokenizer
    return _jieba_tokenizer


def _jieba_cache_dir() -> Path:
    # jieba pickles its prefix dictionary (~1 s to rebuild) into a cache file; keep it with the
    # project's other derived data when there is a writable DATA_DIR (the Django app names it
    # through set_jieba_cache_dir), else in the temp dir.
    candidates = [_cache_dir] if _cache_dir is not None else []
    if os.environ.get("DATA_DIR"):
        candidates.append(Path(os.environ["DATA_DIR"]) / "cache" / "jieba")
    candidates.append(Path(tempfile.gettempdir()) / "relevance-studio-jieba")
    for directory in candidates:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(directory, os.W_OK):
            return directory
    return Path(tempfile.gettempdir())
