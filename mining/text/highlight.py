"""Query terms highlighted in documents, for Chinese and English alike.

Terms come from the same tokeniser that indexes the collection (mining.text.tokenize). Single
letters, single CJK characters and English stop words are not marked: they would light up every
line and hide the signal.
"""
from __future__ import annotations

import re
from html import escape

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


def _cjk_search_words(query: str) -> list[str]:
    """jieba's search-mode words of the query's CJK runs: 南京旅游 -> 南京, 旅游, 南京旅游."""
    return [word for run in _CJK_RUN.findall(normalize(query)) for word in jieba_search_words(run)]


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

    The result is safe HTML (every piece of the text escaped, quotes included, as Django's
    ``escape`` does); a template marks it safe before rendering it."""
    if not terms:
        return escape(text)
    # Longest alternatives first: the regex takes the first alternative that matches at a position.
    ordered = sorted(set(terms), key=lambda t: (-len(t), t))
    pattern = re.compile("|".join(re.escape(t) for t in ordered), re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(text):
        # Latin terms match whole words only ("cat" not inside "category"); CJK has no word breaks.
        if not _CJK.search(match.group()):
            before = text[match.start() - 1] if match.start() else " "
            after = text[match.end()] if match.end() < len(text) else " "
            if _is_latin_word_char(before) or _is_latin_word_char(after):
                continue
        out.append(escape(text[last:match.start()]))
        out.append(f"<mark>{escape(match.group())}</mark>")
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)
