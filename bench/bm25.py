"""BM25 speed: mining.text.bm25 against rank_bm25 (the reference scores) and bm25s, in one run.

Corpora:
- synthetic: 100,000 documents of Poisson(60) tokens drawn from a Zipf(s=1) law over 50,000
  words, and 200 queries of 4 tokens drawn from the same law (so queries contain common words,
  like real ones: on average ~100k postings a query), seeded;
- trec-dl19: its 4,297 passages and 43 queries (mining.text.tokenize, method auto), when present.

For each implementation: index time (best of repeats), peak memory of building the index
(tracemalloc peak in a separate, traced build: numpy/scipy buffers included), and ms/query of
top-10 for the whole query batch (median of repeats). rank_bm25 has no batch API: BM25Okapi.
get_scores per query then argsort, as its get_top_n does; on the 100k corpus it takes ~0.1 s a
query, so it is timed on the first RANK_BM25_TIMED queries and its top-10 for agreement is taken
once over all of them. bm25s (numpy backend, the default when numba is absent) uses
method="robertson", the variant closest to Okapi: same tf saturation up to the constant (k1+1)
and the same idf log((N-n+0.5)/(n+0.5)), but floored at 0 instead of epsilon * average idf,
and float32 scores; it gets the whole batch in one retrieve(k=10) call, single-threaded like us.

top10_agreement: share of queries whose top-10 equals rank_bm25's, where documents tied at the
same score are interchangeable (the same multiset of scores to 1e-9 relative counts as equal).

Run: .venv/bin/python bench/bm25.py [--quick]   (last line: one JSON object)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bm25s  # noqa: E402
from rank_bm25 import BM25Okapi  # noqa: E402

from mining.text.bm25 import BM25Index  # noqa: E402
from mining.text.tokenize import tokenize_many  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
K = 10
RANK_BM25_TIMED = 30


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def synthetic_corpus(n_docs: int, n_words: int, n_queries: int, seed: int = 13):
    rng = np.random.default_rng(seed)
    probabilities = 1.0 / np.arange(1, n_words + 1)
    probabilities /= probabilities.sum()
    words = np.array([f"w{i}" for i in range(n_words)], dtype=object)
    lengths = rng.poisson(60, n_docs)
    tokens = words[rng.choice(n_words, size=int(lengths.sum()), p=probabilities)]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    docs = [tokens[bounds[i] : bounds[i + 1]].tolist() for i in range(n_docs)]
    queries = [words[rng.choice(n_words, 4, p=probabilities)].tolist() for _ in range(n_queries)]
    return docs, queries


def trec_dl19():
    folder = DATASETS / "trec-dl19"
    if not folder.is_dir():
        return None
    corpus = read_jsonl(folder / "corpus.jsonl")
    queries = read_jsonl(folder / "queries.jsonl")
    docs = tokenize_many([(d.get("title") or "") + " " + d["text"] for d in corpus])
    return docs, tokenize_many([q["text"] for q in queries])


def best_time(function, repeats: int) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        timings.append(time.perf_counter() - started)
    return min(timings), result


def median_time(function, repeats: int) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), result


def peak_mb(function) -> float:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def build_bm25s(docs):
    retriever = bm25s.BM25(method="robertson", k1=1.5, b=0.75, backend="numpy")
    retriever.index(docs, show_progress=False)
    return retriever


def agreement(reference_scores: list[np.ndarray], top_indices) -> float:
    """Share of queries whose top-k documents carry the reference's top-k scores."""
    agree = 0
    for scores, indices in zip(reference_scores, top_indices):
        expected = np.sort(scores)[::-1][: len(indices)]
        if np.allclose(np.sort(scores[np.asarray(indices)])[::-1], expected, rtol=1e-9, atol=1e-12):
            agree += 1
    return agree / len(reference_scores)


def measure(name: str, docs, queries, repeats: int, rank_bm25_timed: int) -> dict:
    print(f"== {name}: {len(docs):,} documents, {len(queries)} queries", file=sys.stderr)
    ours_index_s, index = best_time(lambda: BM25Index.build(docs), repeats=2)
    bm25s_index_s, retriever = best_time(lambda: build_bm25s(docs), repeats=1)
    rank_index_s, reference = best_time(lambda: BM25Okapi(docs), repeats=1)
    index.top_k(queries[:5], K)  # warm up caches
    ours_s, (ours_top, _) = median_time(lambda: index.top_k(queries, K), repeats)
    bm25s_s, (bm25s_top, _) = median_time(
        lambda: retriever.retrieve(queries, k=K, show_progress=False, n_threads=0), repeats
    )

    def rank_bm25_top(query):
        scores = reference.get_scores(query)
        return scores, np.argsort(scores)[::-1][:K]

    timed = queries[:rank_bm25_timed]
    rank_s, _ = median_time(lambda: [rank_bm25_top(q) for q in timed], max(1, repeats // 2))
    reference_scores = [reference.get_scores(q) for q in queries]
    figures = {
        "documents": len(docs),
        "queries": len(queries),
        "ms_per_query": 1000 * ours_s / len(queries),
        "rank_bm25_ms_per_query": 1000 * rank_s / len(timed),
        "rank_bm25_queries_timed": len(timed),
        "bm25s_ms_per_query": 1000 * bm25s_s / len(queries),
        "index_s": ours_index_s,
        "rank_bm25_index_s": rank_index_s,
        "bm25s_index_s": bm25s_index_s,
        "top10_agreement": agreement(reference_scores, ours_top),
        "bm25s_top10_agreement": agreement(reference_scores, bm25s_top),
        "max_rel_score_error": max(
            float(np.max(np.abs(index.scores(q) - s) / np.maximum(np.abs(s), 1e-300)))
            for q, s in zip(queries, reference_scores)
        ),
    }
    del reference, retriever, index
    figures["peak_mb"] = peak_mb(lambda: BM25Index.build(docs))
    figures["bm25s_peak_mb"] = peak_mb(lambda: build_bm25s(docs))
    figures["rank_bm25_peak_mb"] = peak_mb(lambda: BM25Okapi(docs))
    figures["speedup_vs_rank_bm25"] = figures["rank_bm25_ms_per_query"] / figures["ms_per_query"]
    figures["speedup_vs_bm25s"] = figures["bm25s_ms_per_query"] / figures["ms_per_query"]
    for key, value in figures.items():
        if isinstance(value, float):
            figures[key] = round(value, 4 if "agreement" in key or "ms" in key else 3)
    figures["max_rel_score_error"] = float(f"{figures['max_rel_score_error']:.2e}")
    print(
        f"  index s: ours {figures['index_s']:.2f}  bm25s {figures['bm25s_index_s']:.2f}"
        f"  rank_bm25 {figures['rank_bm25_index_s']:.2f}\n"
        f"  peak MB (tracemalloc, build): ours {figures['peak_mb']:.0f}"
        f"  bm25s {figures['bm25s_peak_mb']:.0f}  rank_bm25 {figures['rank_bm25_peak_mb']:.0f}\n"
        f"  ms/query: ours {figures['ms_per_query']:.3f}  bm25s {figures['bm25s_ms_per_query']:.3f}"
        f"  rank_bm25 {figures['rank_bm25_ms_per_query']:.2f} ({len(timed)} queries)\n"
        f"  speedup: vs rank_bm25 {figures['speedup_vs_rank_bm25']:.0f}x"
        f"  vs bm25s {figures['speedup_vs_bm25s']:.2f}x\n"
        f"  top-10 agreement with rank_bm25: ours {figures['top10_agreement']:.3f}"
        f"  bm25s {figures['bm25s_top10_agreement']:.3f}",
        file=sys.stderr,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 documents, fewer repeats")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n_docs = 10_000 if args.quick else 100_000
    repeats = 3 if args.quick else args.repeats
    docs, queries = synthetic_corpus(n_docs, 50_000, 200)
    result = measure("synthetic", docs, queries, repeats, RANK_BM25_TIMED)
    result["corpus"] = "synthetic zipf"
    del docs
    trec = trec_dl19()
    if trec is not None:
        result["trec-dl19"] = measure("trec-dl19", *trec, repeats, rank_bm25_timed=len(trec[1]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
