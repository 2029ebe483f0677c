"""Which tokeniser should BM25 use? Retrieval quality of each variant on the shared datasets.

Every query is scored against the whole corpus with mining.text.bm25 (exact BM25Okapi, k1=1.5,
b=0.75, eps=0.25). NDCG@10: linear gain (the grade), log2 discount, ideal ranking from the
query's judged pairs (unjudged retrieved documents gain 0). recall@100: share of the documents
judged >= 2 that reach the top 100. Queries without a document judged >= 1 (NDCG) / >= 2
(recall) are left out of that mean.

Run: .venv/bin/python bench/tokenize_quality.py   (last line: one JSON object)
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mining.text import tokenize as tk  # noqa: E402
from mining.text.bm25 import BM25Index  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"

# Chinese function characters that carry little topic (particles, copula, question words).
CHINESE_STOP_CHARS = frozenset("的了吗呢吧啊是在和与及或么")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def jieba_search_with_unique_chars(run: str) -> list[str]:
    return list(run) + [word for word in tk.jieba_search_words(run) if len(word) > 1]


def without_stop_chars(cut):
    return lambda run: [t for t in cut(run) if t not in CHINESE_STOP_CHARS]


def variant(cut_cjk, stopwords=frozenset()):
    return lambda text: tk._segment(tk.normalize(text), cut_cjk, stopwords)


VARIANTS = {
    "bigram": variant(tk._cjk_bigrams),
    "bigram + unigrams": variant(tk._cjk_chars_and_bigrams),
    "jieba precise": variant(tk._cjk_jieba_precise),
    "jieba search mode": variant(tk.jieba_search_words),
    "jieba precise + unigrams": variant(tk._cjk_chars_and_jieba),
    "jieba search + unigrams": variant(lambda run: list(run) + tk.jieba_search_words(run)),
    "jieba search + uniq unigrams": variant(jieba_search_with_unique_chars),
    "bigram + unigrams - zh stop": variant(without_stop_chars(tk._cjk_chars_and_bigrams)),
    "jieba prec + uni - zh stop": variant(without_stop_chars(tk._cjk_chars_and_jieba)),
    "english words": lambda text: tk.tokenize(text, method="whitespace"),
    "english words - stopwords": variant(tk._cjk_bigrams, tk.ENGLISH_STOPWORDS),
    "auto (the default)": lambda text: tk.tokenize(text, method="auto"),
}
PLAN = {
    "kuake-qtr-train": [
        "bigram",
        "bigram + unigrams",
        "jieba precise",
        "jieba search mode",
        "jieba precise + unigrams",
        "jieba search + unigrams",
        "jieba search + uniq unigrams",
        "bigram + unigrams - zh stop",
        "jieba prec + uni - zh stop",
        "auto (the default)",
    ],
    "trec-dl19": ["english words", "english words - stopwords", "auto (the default)"],
}


def read_dataset(name: str):
    folder = DATASETS / name
    corpus = read_jsonl(folder / "corpus.jsonl")
    queries = read_jsonl(folder / "queries.jsonl")
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(folder / "qrels.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            query_id, doc_id, grade = line.rstrip("\n").split("\t")
            qrels[query_id][doc_id] = int(grade)
    return corpus, queries, qrels


def ndcg_at(ranked: list[str], judged: dict[str, int], k: int) -> float:
    dcg = sum(judged.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(judged.values(), reverse=True)[:k]
    idcg = sum(grade / math.log2(i + 2) for i, grade in enumerate(ideal))
    return dcg / idcg


def evaluate(name: str, variant: str) -> dict:
    corpus, queries, qrels = read_dataset(name)
    tokenizer = VARIANTS[variant]
    started = time.perf_counter()
    docs = [tokenizer((d.get("title") or "") + " " + d["text"]) for d in corpus]
    index = BM25Index.build(docs)
    index_seconds = time.perf_counter() - started
    queries = [q for q in queries if q["_id"] in qrels]
    indices, scores = index.top_k([tokenizer(q["text"]) for q in queries], 100)
    doc_ids = [d["_id"] for d in corpus]
    ndcgs, recalls = [], []
    for query, row, row_scores in zip(queries, indices, scores):
        ranked = [doc_ids[i] for i, s in zip(row, row_scores) if s > 0]
        judged = qrels[query["_id"]]
        if any(g >= 1 for g in judged.values()):
            ndcgs.append(ndcg_at(ranked, judged, 10))
        relevant = {doc for doc, g in judged.items() if g >= 2}
        if relevant:
            recalls.append(len(relevant & set(ranked)) / len(relevant))
    return {
        "ndcg@10": round(float(np.mean(ndcgs)), 4),
        "recall@100": round(float(np.mean(recalls)), 4),
        "index_s": round(index_seconds, 2),
        "queries": len(ndcgs),
    }


def main() -> None:
    results: dict[str, dict] = {}
    for name, variants in PLAN.items():
        if not (DATASETS / name).is_dir():
            print(f"{DATASETS / name}: dataset missing, skipped", file=sys.stderr)
            continue
        results[name] = {}
        print(f"{name}\n  {'variant':28s} NDCG@10  recall@100  index s")
        for variant in variants:
            figures = evaluate(name, variant)
            results[name][variant] = figures
            print(
                f"  {variant:28s} {figures['ndcg@10']:.4f}   {figures['recall@100']:.4f}"
                f"      {figures['index_s']:.1f}"
            )
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
