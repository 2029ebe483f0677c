"""Judge next what matters (#17 item 3), first half: how many human judgments each order of judging
needs before the collection's dev figure -- the served model's NDCG@10 -- is known within ±0.02.

Simulation on trec-dl19 with its qrels as the truth (a judged pair reveals its reference grade;
a pair the qrels never graded is 0, the TREC convention). Each query's candidate pool is its BM25
top ``--depth`` (run.bm25.trec), as mining would add it. The system whose NDCG@10 staff want to
know reranks each pool (``--system``: the base model zero-shot, what serves before any promotion,
or ``bm25``). The truth: its NDCG@10 over the pools with every grade known (ideal DCG from all of
the query's qrels, as trec_eval computes it), averaged over queries with a relevant document. The
estimate after B judgments: the same figure with only the judged grades (unjudged pairs count as
0, and the ideal DCG comes from the judged grades), over queries with a judged relevant document
(training.metrics.ndcg_at_k computes both).

Orders of judging (the strategies the issue names; measured, not assumed):
- ``random``: pairs in a uniformly random order (the anchor).
- ``fewest-judged``: today's assignment -- a whole query at a time, queries in random order, each
  query's candidates in mining (BM25) order.
- ``pooled``: TREC-style pooling by fused rank (reciprocal-rank fusion of the system and BM25):
  every query's rank-1 pair, then every query's rank 2, and so on.
``uncertain`` needs the machine judge's probabilities and ``bandit`` several runs to choose
between; both are left for the product's strategies and not simulated here.

For each order and seed: the smallest budget after which the estimate stays within ±``--tolerance``
of the truth at every later checkpoint (every ``--step`` judgments). Median over ``--seeds``.
The other half of the acceptance -- judgments needed to reach a given promoted-model NDCG@10 --
needs a training run per checkpoint and is not measured on 2 CPU cores.

    .venv/bin/python bench/budget.py [--system zero-shot|bm25] [--depth 100] [--seeds 20]
Last line: one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from _args import int_at_least, positive_float
from _quality_common import ROOT, read_beir

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATASET = ROOT.parent / "shared" / "datasets" / "trec-dl19"
STRATEGIES = ("random", "fewest-judged", "pooled")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=("zero-shot", "bm25"), default="zero-shot")
    parser.add_argument("--depth", type=int_at_least(10), default=100, help="pool depth per query (BM25 top)")
    parser.add_argument("--seeds", type=int_at_least(1), default=20)
    parser.add_argument("--step", type=int_at_least(1), default=43, help="judgments between checkpoints")
    parser.add_argument("--tolerance", type=positive_float, default=0.02)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from training.metrics import ndcg_at_k

    corpus, queries, qrels = read_beir("trec-dl19")
    pools = _pools(qrels, args.depth)
    qids = sorted(pools)
    width = max(len(p) for p in pools.values())
    truth_grades = np.zeros((len(qids), width))
    mask = np.zeros((len(qids), width), dtype=bool)
    for i, q in enumerate(qids):
        for j, doc in enumerate(pools[q]):
            truth_grades[i, j] = qrels[q].get(doc, 0)
            mask[i, j] = True
    all_grades = np.zeros((len(qids), max(len(qrels[q]) for q in qids)))
    for i, q in enumerate(qids):
        all_grades[i, : len(qrels[q])] = sorted(qrels[q].values(), reverse=True)
    scores = _system_scores(args.system, qids, pools, queries, corpus, width)
    truth = float(np.nanmean(ndcg_at_k(scores, truth_grades, mask, ideal_grades=all_grades)))

    bm25_rank = np.tile(np.arange(width, dtype=float), (len(qids), 1))        # pools are in BM25 order
    system_rank = np.argsort(np.argsort(-np.where(mask, scores, -np.inf), axis=1), axis=1).astype(float)
    fused = 1.0 / (60 + system_rank) + 1.0 / (60 + bm25_rank)               # reciprocal-rank fusion
    cells = np.argwhere(mask)
    checkpoints = list(range(args.step, len(cells) + args.step, args.step))

    def errors_of(order: np.ndarray) -> np.ndarray:
        judged = np.zeros_like(mask)
        out, done = [], 0
        for budget in checkpoints:
            take = order[done:budget]
            judged[take[:, 0], take[:, 1]] = True
            done = budget
            grades = np.where(judged, truth_grades, 0.0)
            estimate = ndcg_at_k(scores, grades, mask, ideal_grades=grades)
            value = np.nanmean(estimate) if np.isfinite(estimate).any() else np.nan
            out.append(abs(value - truth) if np.isfinite(value) else np.inf)
        return np.asarray(out)

    def needed(errors: np.ndarray) -> int:
        bad = np.flatnonzero(errors > args.tolerance)
        return checkpoints[0] if bad.size == 0 else (checkpoints[bad[-1] + 1] if bad[-1] + 1 < len(checkpoints)
                                                      else len(cells))

    figures: dict[str, dict] = {}
    for strategy in STRATEGIES:
        budgets, curves = [], []
        for seed in range(args.seeds if strategy != "pooled" else 1):
            order = _order(strategy, cells, fused, np.random.default_rng(seed))
            errors = errors_of(order)
            budgets.append(needed(errors))
            curves.append(errors)
        curve = np.median(np.vstack(curves), axis=0)
        figures[strategy] = {"judgments_needed_median": int(np.median(budgets)),
                             "judgments_needed_range": [int(min(budgets)), int(max(budgets))],
                             "share_of_pool": round(float(np.median(budgets)) / len(cells), 3),
                             "median_error_at": {str(b): round(float(curve[k]), 4) for k, b in enumerate(checkpoints)
                                                 if b in (checkpoints[0], 430, 860, 1290, 2150)}}
        print(f"{strategy}: {figures[strategy]['judgments_needed_median']} judgments "
              f"({figures[strategy]['share_of_pool']:.0%} of the {len(cells)}-pair pool) to stay within "
              f"±{args.tolerance} of the system's NDCG@10 {truth:.4f}")
    best = min(STRATEGIES, key=lambda s: figures[s]["judgments_needed_median"])
    result = {"system": args.system, "queries": len(qids), "pool_pairs": int(len(cells)), "depth": args.depth,
              "true_ndcg@10": round(truth, 4), "tolerance": args.tolerance, "seeds": args.seeds,
              "strategies": figures, "fewest_judgments": best,
              "vs_random": {s: round(figures[s]["judgments_needed_median"] / figures["random"]["judgments_needed_median"], 3)
                            for s in STRATEGIES}}
    print(json.dumps(result))
    return result


def _pools(qrels, depth: int) -> dict[str, list[str]]:
    pools: dict[str, list[str]] = {}
    with open(DATASET / "run.bm25.trec", encoding="utf-8") as handle:
        for line in handle:
            qid, _q0, doc, rank, _score, _tag = line.split()
            if qid in qrels and int(rank) <= depth:
                pools.setdefault(qid, []).append((int(rank), doc))
    return {q: [d for _, d in sorted(rows)] for q, rows in pools.items()}


def _system_scores(system: str, qids, pools, queries, corpus, width: int) -> np.ndarray:
    scores = np.full((len(qids), width), -np.inf)
    if system == "bm25":
        for i, q in enumerate(qids):
            scores[i, : len(pools[q])] = -np.arange(len(pools[q]), dtype=float)
        return scores
    from django.conf import settings

    from training.rankers import load_ranker

    ranker = load_ranker(settings.BASE_MODEL_DIR, max_length=256)
    values = ranker.score_lists([(queries[q], [corpus.get(d, "") for d in pools[q]]) for q in qids])
    for i, row in enumerate(values):
        scores[i, : len(row)] = row
    return scores


def _order(strategy: str, cells: np.ndarray, fused: np.ndarray, rng) -> np.ndarray:
    if strategy == "random":
        return cells[rng.permutation(len(cells))]
    if strategy == "fewest-judged":
        query_order = rng.permutation(cells[:, 0].max() + 1)
        position = np.empty_like(query_order)
        position[query_order] = np.arange(query_order.size)
        return cells[np.lexsort((cells[:, 1], position[cells[:, 0]]))]
    # pooled: each query's pairs ranked by fused score; rank 1 of every query first, then rank 2...
    within = np.argsort(np.argsort(-fused, axis=1), axis=1)
    depth_of = within[cells[:, 0], cells[:, 1]]
    return cells[np.lexsort((cells[:, 0], depth_of))]


if __name__ == "__main__":
    main()
