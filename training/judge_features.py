"""What the machine judge reads beside the model's score: how much of the query the document meets.

A reranker fine-tuned on a few thousand queries orders a query's candidates well, but its score is a
weak *grade*: people grade how much of the need a document covers (kuake-qtr: 3 = the title is about
exactly the query, 1 = the same subject with another intent, 0 = unrelated), and a score says little
about where those lines fall. Word-overlap statistics say more: on kuake-qtr (4,018 queries'
grades calibrating, 955 held-out queries judged; bench/machine_judge.py) the text features alone
reach Cohen's kappa 0.264 with the reference grades, the score of a bi-encoder fine-tuned on those
4,018 queries alone 0.228, both together 0.309. The judge's calibration (training.machine_judge)
reads the score *and* these, and keeps the text only when it helps on held-out calibration queries.

Every feature is in the collection's own analyser (mining.text.tokenize, the BM25 tokens: single
characters and jieba's words in CJK runs, words elsewhere), with document frequencies over the
documents being judged, so Chinese and English are treated alike:

- the share of the query's distinct tokens found in the document, plain and idf-weighted, and of
  the document's found in the query; the same for multi-character tokens (words);
- the idf mass of the query tokens the document lacks and the largest one (one rare missing term,
  a disease name, is what makes a title about something else), and of the document's extra tokens;
- on the normalised text (NFKC, lower case): the longest common substring (difflib) and the longest
  common subsequence (rapidfuzz, bit-parallel) over the query's length, the subsequence over the
  document's: a title that says the query's phrase in the query's order;
- the lengths of both, in tokens.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from mining.text.tokenize import normalize, tokenize

FEATURE_NAMES = (
    "query_covered", "document_covered", "query_covered_idf", "document_covered_idf",
    "query_words_covered", "document_words_covered", "query_missing_idf", "query_missing_idf_max",
    "document_extra_idf", "longest_substring", "longest_subsequence", "subsequence_of_document",
    "query_tokens", "document_tokens",
)
# The character measures read at most this much of a document: a passage's first few hundred
# characters are where a query's phrase would be; the cap keeps a long text from costing more.
MAX_TEXT_CHARS = 2000


class TextFeatures:
    """FEATURE_NAMES of (query, document) pairs, with document frequencies of `documents`."""

    def __init__(self, documents: Iterable[str], *, method: str = "auto"):
        self.method = method
        self._tokens: dict[str, list[str]] = {}
        frequency: Counter = Counter()
        count = 0
        for text in documents:
            frequency.update(set(self._tokenize(text)))
            count += 1
        self._idf = {token: math.log((count + 1) / (n + 0.5)) for token, n in frequency.items()}
        self._unseen_idf = math.log((count + 1) / 0.5)  # a query token no document has: rarest of all

    def of(self, query: str, document: str) -> list[float]:
        query_tokens, document_tokens = self._tokenize(query), self._tokenize(document)
        q, d = set(query_tokens), set(document_tokens)
        shared = q & d
        q_words, d_words = {t for t in q if len(t) > 1}, {t for t in d if len(t) > 1}
        idf = self._idf_of
        # math.fsum: a set's order changes with the process's string hashing, and a plain sum's last
        # bit with it, which moves the classifier's bins: the same data must give the same grades
        # in every worker process, so a rerun revises nothing
        missing = [idf(t) for t in q - d]
        q_mass, d_mass = math.fsum(map(idf, q)), math.fsum(map(idf, d))
        shared_mass = math.fsum(map(idf, shared))
        a, b = normalize(query), normalize(document[:MAX_TEXT_CHARS])
        subsequence = _longest_common_subsequence(a, b)
        return [
            _share(len(shared), len(q)), _share(len(shared), len(d)),
            _share(shared_mass, q_mass), _share(shared_mass, d_mass),
            _share(len(q_words & d_words), len(q_words)), _share(len(q_words & d_words), len(d_words)),
            math.fsum(missing), max(missing, default=0.0),
            math.fsum(idf(t) for t in d - q),
            _share(_longest_common_substring(a, b), len(a)), _share(subsequence, len(a)), _share(subsequence, len(b)),
            float(len(query_tokens)), float(len(document_tokens)),
        ]

    def _idf_of(self, token: str) -> float:
        return self._idf.get(token, self._unseen_idf)

    def _tokenize(self, text: str) -> list[str]:
        tokens = self._tokens.get(text)
        if tokens is None:
            tokens = self._tokens[text] = tokenize(text, method=self.method)
        return tokens


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _longest_common_subsequence(a: str, b: str) -> int:
    from rapidfuzz.distance import LCSseq

    return int(LCSseq.similarity(a, b))


def _longest_common_substring(a: str, b: str) -> int:
    """Length of the longest run of `a` that occurs in `b` (difflib, without its junk heuristic,
    which would skip characters frequent in a long `b`)."""
    from difflib import SequenceMatcher

    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size
