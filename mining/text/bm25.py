"""BM25 with exactly rank_bm25.BM25Okapi's scores, from a sparse term-document weight matrix.

rank_bm25 (0.2.2) is the reference; every detail below is copied from `BM25Okapi`:

- idf(t) = log(N - n_t + 0.5) - log(n_t + 0.5), n_t = number of documents containing t.
- average_idf = the plain mean of those raw idfs over the whole vocabulary (negative ones
  included, summed in vocabulary order); every term whose idf is < 0 (in more than half of the
  documents) then gets idf = epsilon * average_idf. An idf of exactly 0 is kept.
- weight(t, d) = idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl)),
  avgdl = total tokens / N; a document without t contributes 0 for t.
- score(q, d) = sum over the query's tokens *with repetition* (a token twice counts twice);
  tokens not in the vocabulary contribute 0.

Only the (term, document) pairs that occur have a non-zero weight, so the weights are computed
once, in float64, into a CSR matrix with one row per term (its postings). Scoring a query reads
only the rows of its terms: work proportional to its postings, not to the corpus.

Two paths, chosen per query by its number of postings:
- light queries (postings <= N / 4) are batched into a sparse query-term matrix Q (counts) and
  scored as Q @ W in one scipy sparse product; top-k is taken from each row's non-zeros;
- heavy queries (very common terms) are accumulated into a dense score vector with np.bincount,
  which beats any sparse structure once most documents are touched.
Top-k of a long score vector first cuts at the k-th best of an evenly spaced sample (a lower
bound of the true k-th best, so nothing is lost), then argpartitions the few survivors; ties are
broken by the lower document index, so results are deterministic. When fewer than k documents match, the rest of the top-k are zero-score documents
(as rank_bm25's get_top_n would give); callers that want matches only drop scores <= 0.

Where rank_bm25 fails, this index is defined instead: a corpus whose documents are all empty
(rank_bm25 divides by zero) scores every query 0; an empty corpus is an error.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

FORMAT_VERSION = 1
# A query touching more than this fraction of the corpus is scored densely (bincount).
_DENSE_FRACTION = 0.25
# Upper bound on postings summed into one sparse product, to bound its memory (~12 bytes each).
_SPARSE_BATCH_POSTINGS = 4_000_000
# Top-k of long score vectors first cuts at the k-th best of a sample this many times k.
_SAMPLE_FACTOR = 64


@dataclass(frozen=True)
class BM25Params:
    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25


class BM25Index:
    """Okapi BM25 over a fixed corpus; documents are addressed by their position (0..N-1)."""

    def __init__(
        self,
        *,
        vocabulary: dict[str, int],
        weights: sp.csr_matrix,
        idf: np.ndarray,
        doc_len: np.ndarray,
        avgdl: float,
        average_idf: float,
        params: BM25Params,
    ):
        self.vocabulary = vocabulary
        self.weights = weights  # (terms x documents), CSR: row t = postings of term t
        self.idf = idf
        self.doc_len = doc_len
        self.avgdl = avgdl
        self.average_idf = average_idf
        self.params = params

    @property
    def n_docs(self) -> int:
        return self.weights.shape[1]

    # ---- building -----------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        tokenized_docs: Sequence[Sequence[str]],
        *,
        k1: float = 1.5,
        b: float = 0.75,
        epsilon: float = 0.25,
    ) -> BM25Index:
        """Index documents given as token lists (from mining.text.tokenize)."""
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        n_docs = len(tokenized_docs)
        if n_docs == 0:
            raise ValueError("cannot build a BM25 index over an empty corpus")
        vocabulary: dict[str, int] = {}
        # Term ids in order of first occurrence: the order rank_bm25 sums its idfs in.
        term_ids = np.fromiter(
            (vocabulary.setdefault(token, len(vocabulary)) for doc in tokenized_docs for token in doc),
            dtype=np.int32,  # narrow ids and float32 counts (exact below 2**24) halve build memory
        )
        doc_len = np.fromiter((len(doc) for doc in tokenized_docs), dtype=np.int64, count=n_docs)
        doc_ids = np.repeat(np.arange(n_docs, dtype=np.int32), doc_len)
        n_terms = len(vocabulary)
        tf = sp.coo_matrix(
            (np.ones(len(term_ids), dtype=np.float32), (term_ids, doc_ids)), shape=(n_terms, n_docs)
        )
        del term_ids, doc_ids
        tf = tf.tocsr()
        tf.sum_duplicates()  # also sorts each row's document ids
        params = BM25Params(k1=float(k1), b=float(b), epsilon=float(epsilon))
        return cls._from_term_frequencies(vocabulary, tf, doc_len, params)

    @classmethod
    def _from_term_frequencies(cls, vocabulary, tf: sp.csr_matrix, doc_len, params) -> BM25Index:
        n_terms, n_docs = tf.shape
        avgdl = int(doc_len.sum()) / n_docs
        df = np.diff(tf.indptr).astype(np.float64)
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        # rank_bm25 sums the raw idfs one by one in vocabulary order; cumsum is sequential too.
        average_idf = float(np.cumsum(idf)[-1]) / n_terms if n_terms else 0.0
        idf[idf < 0] = params.epsilon * average_idf

        k1, b = params.k1, params.b
        # BM25Okapi.get_scores' expression and order; an all-empty corpus has no postings to weigh.
        norm = k1 * (1 - b + b * doc_len / avgdl) if avgdl else np.zeros(n_docs)
        # weight = idf * (tf * (k1 + 1) / (tf + norm)), evaluated in place, posting by posting
        # (IEEE + and * commute, so the operand swaps below leave every bit as rank_bm25 has it).
        weight = tf.data.astype(np.float64)
        denominator = norm[tf.indices]
        denominator += weight
        weight *= k1 + 1
        weight /= denominator
        del denominator
        weight *= np.repeat(idf, np.diff(tf.indptr))
        weights = sp.csr_matrix((weight, tf.indices, tf.indptr), shape=(n_terms, n_docs))
        return cls(
            vocabulary=vocabulary,
            weights=weights,
            idf=idf,
            doc_len=doc_len,
            avgdl=avgdl,
            average_idf=average_idf,
            params=params,
        )

    # ---- scoring ------------------------------------------------------------------------

    def _query_terms(self, query_tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Known term ids of a query and how often each occurs in it."""
        counts: dict[int, int] = {}
        for token in query_tokens:
            term = self.vocabulary.get(token)
            if term is not None:
                counts[term] = counts.get(term, 0) + 1
        terms = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        return terms, np.fromiter(counts.values(), dtype=np.float64, count=len(counts))

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for one query (dense, length N)."""
        terms, counts = self._query_terms(query_tokens)
        return self._dense_scores(terms, counts)

    def _dense_scores(self, terms: np.ndarray, counts: np.ndarray) -> np.ndarray:
        indptr, indices, data = self.weights.indptr, self.weights.indices, self.weights.data
        if len(terms) == 0:
            return np.zeros(self.n_docs)
        rows = [slice(indptr[t], indptr[t + 1]) for t in terms]
        postings = np.concatenate([indices[row] for row in rows])
        values = np.concatenate(
            [data[row] if count == 1 else data[row] * count for row, count in zip(rows, counts)]
        )
        return np.bincount(postings, weights=values, minlength=self.n_docs)

    def top_k(self, queries: Sequence[Sequence[str]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best documents of each query: (indices, scores), both (len(queries), k).

        Rows are sorted by score descending, ties by document index; k is capped at N.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k = min(k, self.n_docs)
        n_queries = len(queries)
        top_indices = np.zeros((n_queries, k), dtype=np.int64)
        top_scores = np.zeros((n_queries, k), dtype=np.float64)
        postings_per_term = np.diff(self.weights.indptr)
        light: list[tuple[int, np.ndarray, np.ndarray]] = []
        light_postings = 0
        for row, query_tokens in enumerate(queries):
            terms, counts = self._query_terms(query_tokens)
            n_postings = int(postings_per_term[terms].sum())
            if n_postings > _DENSE_FRACTION * self.n_docs:
                scores = self._dense_scores(terms, counts)
                top_indices[row], top_scores[row] = _select_top_k(scores, None, k)
                continue
            light.append((row, terms, counts))
            light_postings += n_postings
            if light_postings >= _SPARSE_BATCH_POSTINGS:
                self._top_k_sparse(light, k, top_indices, top_scores)
                light, light_postings = [], 0
        if light:
            self._top_k_sparse(light, k, top_indices, top_scores)
        return top_indices, top_scores

    def _top_k_sparse(self, batch, k, top_indices, top_scores) -> None:
        lengths = np.array([len(terms) for _, terms, _ in batch])
        query_matrix = sp.csr_matrix(
            (
                np.concatenate([counts for _, _, counts in batch]),
                np.concatenate([terms for _, terms, _ in batch]),
                np.concatenate([[0], np.cumsum(lengths)]),
            ),
            shape=(len(batch), self.weights.shape[0]),
        )
        matched = query_matrix @ self.weights  # (queries x documents), only matching documents
        for i, (row, _, _) in enumerate(batch):
            start, end = matched.indptr[i], matched.indptr[i + 1]
            values, docs = matched.data[start:end], matched.indices[start:end]
            top_indices[row], top_scores[row] = self._top_k_of_matches(values, docs, k)

    def _top_k_of_matches(self, values: np.ndarray, docs: np.ndarray, k: int):
        """Top-k of a score vector that is `values` at `docs` and 0 everywhere else."""
        if len(values) and values.min() <= 0:
            # Negative weights (epsilon * a negative average idf): unmatched zero-score documents
            # may outrank matches, so rank the whole corpus. Only degenerate corpora get here.
            scores = np.zeros(self.n_docs)
            scores[docs] = values
            return _select_top_k(scores, None, k)
        if len(values) >= k:
            return _select_top_k(values, docs.astype(np.int64), k)
        # Fewer matches than k: pad with the lowest-index zero-score documents; those lie in
        # 0..k-1, since at most len(values) of them are matches.
        order = np.lexsort((docs, -values))
        padding = np.setdiff1d(np.arange(k), docs, assume_unique=True)[: k - len(values)]
        indices = np.concatenate([docs[order].astype(np.int64), padding])
        return indices, np.concatenate([values[order], np.zeros(len(padding))])

    # ---- persistence --------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index as a directory of .npy files + JSON, atomically (rename at the end)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            np.save(staging / "weights_data.npy", self.weights.data)
            np.save(staging / "weights_indices.npy", self.weights.indices)
            np.save(staging / "weights_indptr.npy", self.weights.indptr)
            np.save(staging / "idf.npy", self.idf)
            np.save(staging / "doc_len.npy", self.doc_len)
            terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
            (staging / "vocabulary.json").write_text(json.dumps(terms, ensure_ascii=False), "utf-8")
            meta = {
                "format_version": FORMAT_VERSION,
                "n_docs": self.n_docs,
                "n_terms": len(terms),
                "avgdl": self.avgdl,
                "average_idf": self.average_idf,
                "k1": self.params.k1,
                "b": self.params.b,
                "epsilon": self.params.epsilon,
            }
            (staging / "meta.json").write_text(json.dumps(meta), "utf-8")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = True) -> BM25Index:
        """Open a saved index; with mmap the arrays are paged in from disk as queries need them."""
        source = Path(path)
        meta_file = source / "meta.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{meta_file}: no BM25 index here")
        meta = json.loads(meta_file.read_text("utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{meta_file}: index format {meta.get('format_version')!r}, expected {FORMAT_VERSION}"
            )
        mode = "r" if mmap else None

        def array(name):
            return np.load(source / f"{name}.npy", mmap_mode=mode)

        weights = sp.csr_matrix(
            (array("weights_data"), array("weights_indices"), array("weights_indptr")),
            shape=(meta["n_terms"], meta["n_docs"]),
            copy=False,
        )
        terms = json.loads((source / "vocabulary.json").read_text("utf-8"))
        return cls(
            vocabulary={term: i for i, term in enumerate(terms)},
            weights=weights,
            idf=array("idf"),
            doc_len=array("doc_len"),
            avgdl=meta["avgdl"],
            average_idf=meta["average_idf"],
            params=BM25Params(k1=meta["k1"], b=meta["b"], epsilon=meta["epsilon"]),
        )


def _select_top_k(values: np.ndarray, docs: np.ndarray | None, k: int):
    """The k largest `values` (docs[i] names values[i]; None = position), ties to the lower doc."""
    if docs is None:
        docs = np.arange(len(values))
    if len(values) > 4 * _SAMPLE_FACTOR * k:
        # The k-th largest of any subset is <= the k-th largest of all, so the k-th largest of
        # an evenly spaced sample is a safe cut: one vectorised compare keeps a few hundred
        # candidates (every tie at the true k-th included) instead of partitioning everything.
        cut = np.partition(values[:: len(values) // (_SAMPLE_FACTOR * k)], -k)[-k]
        kept = np.flatnonzero(values >= cut)
        values, docs = values[kept], docs[kept]
    if len(values) > k:
        kth = values[np.argpartition(values, len(values) - k)[len(values) - k]]
        above = np.flatnonzero(values > kth)
        tied = np.flatnonzero(values == kth)
        # Keep the lowest-index documents among those tied at the cut.
        tied = tied[np.argsort(docs[tied], kind="stable")[: k - len(above)]]
        candidates = np.concatenate([above, tied])
    else:
        candidates = np.arange(len(values))
    order = np.lexsort((docs[candidates], -values[candidates]))
    chosen = candidates[order]
    return docs[chosen].astype(np.int64, copy=False), values[chosen]
