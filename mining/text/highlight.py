"""Query terms highlighted in documents, for Chinese and English alike.

Terms come from the same tokeniser that indexes the collection (mining.text.tokenize). Single
letters, single CJK characters and English stop words are not marked: they would light up every
line and hide the signal. Two things make a term show where a reader sees it:

- Latin words match by their Snowball (Porter2) stem, so "boil an egg" marks "Boiled eggs" and
  "boiling" (snowballstemmer: the pure-Python stemmer Sphinx and Whoosh use);
- CJK characters jieba leaves single in a run are joined back into one term: 列表去重 cuts into
  列表 / 去 / 重, and 去重 is marked, not lost with the single characters.
"""
from __future__ import annotations

import re
from functools import lru_cache
from html import escape

import snowballstemmer

from .tokenize import jieba_search_words, normalize, tokenize

_STOP = frozenset(
    "a an and are as at be by for from how in is it of on or that the this to was what when where which who why with".split()
)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def _tokens(text: str, method: str) -> list[str]:
    return tokenize(text, method=method)


def _is_latin_word_char(ch: str) -> bool:
    return ch.isalnum() and not _CJK.match(ch)


# A maximal run of letters and digits that are not CJK: one Latin (or Cyrillic, Greek...) word.
_WORD = re.compile(r"(?:(?![\u3400-\u9fff\uf900-\ufaff])[^\W_])+")
_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word.lower())


def _cjk_search_words(query: str) -> list[str]:
    """jieba's search-mode words of the query's CJK runs (南京旅游 -> 南京, 旅游, 南京旅游), plus
    every stretch of single characters jieba left, joined (列表去重 -> 列表, 去, 重 -> 去重)."""
    words = []
    for run in _CJK_RUN.findall(normalize(query)):
        cut = jieba_search_words(run)
        words += cut
        singles: list[str] = []
        for word in [*cut, ""]:
            if len(word) == 1:
                singles.append(word)
                continue
            if len(singles) > 1:
                words.append("".join(singles))
            singles = []
    return words


def query_terms(query: str, *, method: str = "auto") -> list[str]:
    """Terms worth marking: the collection tokeniser's words, plus jieba's search-mode words.

    Single CJK characters are left out (they light up every other character); search-mode
    words stand in for them, so "南京旅游" still marks 南京 and 旅游 in "南京的旅游景点".
    """
    terms = set()
    tokens = _tokens(query, method) + (_cjk_search_words(query) if _CJK.search(query) else [])
    for token in tokens:
        token = token.strip()
        if not token or token in _STOP or len(token) < 2:
            continue
        terms.add(token)
    if not terms:  # a one-character query: mark that character
        terms = {t for t in _tokens(query, method) if t.strip()}
    # Longest first so "python列表" wins over "python" where both match.
    return sorted(terms, key=lambda t: (-len(t), t))


def highlight(text: str, terms: list[str]) -> str:
    """Escape `text` and wrap every case-insensitive occurrence of a term in <mark>.

    A term of Latin letters marks whole words with the same stem ("egg" marks "eggs", never
    "eggplant"); a term with CJK (no word breaks there) marks every occurrence. Overlaps go to the
    earliest, then the longest match. The result is safe HTML (every piece of the text escaped,
    quotes included, as Django's ``escape`` does); a template marks it safe before rendering it."""
    if not terms:
        return escape(text)
    stems = {_stem(t) for t in terms if _WORD.fullmatch(t)}
    others = sorted({t for t in terms if not _WORD.fullmatch(t)}, key=lambda t: (-len(t), t))
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text) if _stem(m.group()) in stems]
    if others:
        # Longest alternatives first: the regex takes the first alternative that matches at a position.
        pattern = re.compile("|".join(re.escape(t) for t in others), re.IGNORECASE)
        for match in pattern.finditer(text):
            # A term's Latin ends match at word edges only ("python列表" not inside "cpython列表").
            before = text[match.start() - 1] if match.start() else " "
            after = text[match.end()] if match.end() < len(text) else " "
            if (_is_latin_word_char(match.group()[0]) and _is_latin_word_char(before)) or \
                    (_is_latin_word_char(match.group()[-1]) and _is_latin_word_char(after)):
                continue
            spans.append((match.start(), match.end()))
    out, last = [], 0
    for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
        if start < last:
            continue
        out.append(escape(text[last:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        last = end
    out.append(escape(text[last:]))
    return "".join(out)
