"""What the parts of bench/quality.py share: reading the BEIR datasets, building query groups,
BM25 pools, fine-tuning a reranker and scoring it by per-query NDCG@10."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


def read_beir(name: str):
    folder = DATASETS / name
    corpus, queries, qrels = {}, {}, {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            corpus[row["_id"]] = (row.get("title", "") + " " + row["text"]).strip()
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
    with open(folder / "qrels.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, did, grade = line.split()
            if did in corpus and qid in queries:
                qrels.setdefault(qid, {})[did] = int(grade)
    return corpus, queries, qrels


def group(qid, query, doc_ids, corpus, labels, split=None, weights=None):
    from training.data import QueryGroup

    return QueryGroup(query_id=qid, query=query, doc_ids=list(doc_ids), docs=[corpus[d] for d in doc_ids],
                      labels=[float(labels.get(d, 0)) for d in doc_ids],
                      weights=list(weights) if weights is not None else [1.0] * len(doc_ids), split=split)


def data_file(groups, name="bench"):
    from training.data import DataFile

    return DataFile(path=Path(name), format="listwise", groups=list(groups), sha256="-")


def fine_tune(train_groups, base, out, args, *, max_length, add_cjk_vocab=False, loss="listwise"):
    from training.config import TrainConfig
    from training.trainer import train

    config = TrainConfig(loss=loss, epochs=args.epochs, batch_size=8, group_size=8, max_length=max_length,
                         learning_rate=args.lr, warmup_ratio=0.1, seed=args.seed, add_cjk_vocab=add_cjk_vocab)
    return train(config=config, train_data=data_file(train_groups), base_model=base, out_dir=out)


def ndcg_of(model_dir, groups, *, max_length, qrels=None):
    from training.evaluation import model_scores
    from training.scoring import load_cross_encoder

    model, tokenizer = load_cross_encoder(model_dir)  # CUDA when there is one
    return ranked_ndcg(groups, model_scores(model, tokenizer, groups, max_length=max_length), qrels)


def ranked_ndcg(groups, scores, qrels=None) -> dict:
    """Per-query NDCG@10 (ideal from every judged doc of the query when qrels are given)."""
    from training.metrics import evaluate

    runs = {g.query_id: {d: float(s) for d, s in zip(g.doc_ids, sc)} for g, sc in zip(groups, scores)}
    judged = qrels if qrels is not None else {g.query_id: dict(zip(g.doc_ids, g.labels)) for g in groups}
    result = evaluate(runs, {q: judged[q] for q in runs}, k=10)
    return {q: v["ndcg@10"] for q, v in result["per_query"].items()}


def mean(per_query: dict) -> float:
    values = [v for v in per_query.values() if v is not None]
    return round(statistics.fmean(values), 4) if values else None


def bm25_pools(corpus, queries, qids, depth):
    """(BM25 index of the whole corpus, its document ids, each query's top ``depth`` ids)."""
    from mining.text.bm25 import BM25Index
    from mining.text.tokenize import tokenize_many

    doc_ids = list(corpus)
    index = BM25Index.build(tokenize_many([corpus[d] for d in doc_ids]))
    return index, doc_ids, bm25_top(index, doc_ids, queries, qids, depth)


def bm25_top(index, doc_ids, queries, qids, depth) -> dict:
    """Each query's top ``depth`` document ids from an index bm25_pools built."""
    from mining.text.tokenize import tokenize

    top, _ = index.top_k([tokenize(queries[q]) for q in qids], depth)
    return {q: [doc_ids[i] for i in row] for q, row in zip(qids, top)}


def prepare_base(tmp: Path) -> Path:
    """The MiniLM as a one-logit classifier with a seeded head, saved once: every row starts here."""
    import torch
    from django.conf import settings

    from training.scoring import load_cross_encoder

    torch.manual_seed(0)
    model, tokenizer = load_cross_encoder(settings.BASE_MODEL_DIR, device="cpu")
    model.save_pretrained(tmp / "base")
    tokenizer.save_pretrained(tmp / "base")
    return tmp / "base"


def training_groups_with_negatives(qids, queries, qrels, pools, corpus, rng, per_query=1):
    """Per train query: each positive (up to per_query) with judged negatives then BM25 negatives."""
    groups = []
    for q in qids:
        judged = qrels[q]
        positives = [d for d, g in judged.items() if g >= 2]
        rng.shuffle(positives)
        negatives = [d for d, g in judged.items() if g < 2] + [d for d in pools[q] if d not in judged]
        for i, positive in enumerate(positives[:per_query]):
            chosen = [positive] + [d for d in negatives if d != positive][i * 7:(i + 1) * 7]
            if len(chosen) > 1:
                groups.append(group(f"{q}#{i}", queries[q], chosen, corpus, judged))
    return groups
