"""Reranker quality: dev NDCG@10 of BM25, the untuned base model and the fine-tuned model.

(a) kuake-qtr-train, queries split by annotate.splits.split_for of the query id (train -> train;
    dev and test -> dev; ``--kuake-split text``: of the query text, as the studio splits an
    imported query). Two dev protocols: "judged" reranks each query's human-graded titles (queries whose
    titles differ in grade); "pooled" adds the BM25 top ``--pool`` titles of the whole corpus
    (mining.text.bm25 + mining.text.tokenize) with unjudged = grade 0. Rows: BM25 (scores from the index of
    the whole corpus), then through the studio: a training run with the defaults on the train
    queries (``--dev-share`` held out as its dev, judged titles only, as a studio export holds;
    training.candidates, training.gate), every
    candidate, and "served" (the winner; else the zero-shot base if it beat BM25 on the run's
    dev, else BM25). ``--ce-rows`` adds the earlier cross-encoder rows: MiniLM with a fresh head,
    fine-tuned, and fine-tuned with the training data's CJK characters added as tokens
    (training.vocab). Training groups: per train query every judged title with
    its grade, plus ``--fill-negatives`` unjudged titles of its BM25 pool as grade 0 after the
    pool's top ``--fill-skip`` (KuakeSetup.train_groups).
(b) trec-dl19, 5-fold cross-validation by query, through the studio: per fold, a training run on
    the other folds (training.candidates with the run defaults, ``--dev-share`` of the train
    queries held out as dev, training.gate.decide_run), then on the fold's BM25 top
    ``--dl19-depth`` (judged docs outside the run count as missed, as trec_eval does): BM25, every
    candidate, and "served" -- the model the studio would serve after the run (the winner; with
    none, the zero-shot base if it beats BM25 on the judged train queries, else BM25). Figures are
    means over folds of per-query values (every query evaluated exactly once), and per fold.
(c) noise: part (a)'s queries imported into a scratch SQLite database, simulated annotators of
    ``--profiles`` (3 honest at ``--noise`` 0.3, one always +1, one random, one constant) with
    ``--overlap`` 3 grades per pair; models (with the CJK vocabulary) trained on the clean reference labels, on
    unweighted majority labels, and on the weighted listwise export, the groups otherwise alike;
    each one's share of the clean model's dev gain over BM25, per protocol. ``--c-track``: the
    model a studio run trains by default (bi-encoder, its own schedule: 4 epochs, lr 2e-5) or
    the earlier cross-encoder fine-tuning (``--epochs``, ``--lr``).

Training (all parts): listwise loss, group size 8, ``--epochs``, AdamW ``--lr``, batch 8 groups;
CUDA (bf16 autocast) when there is a GPU. Metrics from training.metrics (DESIGN.md). What the
parts share (datasets, groups, fine-tuning, scoring) is bench/_quality_common.py.

The acceptance run uses every query. Part (a) through the studio (the bi-encoder track has its own
schedule; --epochs is for the cross-encoder rows) took 38 minutes on 2 CPU cores: the run promoted
the bi-encoder and the model served beat BM25 on both protocols (judged 0.9525 vs 0.9413, pooled
0.9004 vs 0.8778). The defaults subsample for a quick look (800 train queries, ~5 minutes for part
(a)), too few dev queries for the gate to promote a gain of half a point:
    .venv/bin/python bench/quality.py --parts a --kuake-train 0 --kuake-dev 0
    .venv/bin/python bench/quality.py --parts c --kuake-train 0 --kuake-dev 0
    .venv/bin/python bench/quality.py --parts b --epochs 3
Quick look: .venv/bin/python bench/quality.py [--parts abc] [--kuake-train 800] [--kuake-dev 200] ...
Part (c) on a GPU machine without the app's services: make the labels here, train there, judge here:
    .venv/bin/python bench/quality.py --parts c --kuake-train 0 --kuake-dev 0 --handoff-out H
    python3 bench/quality.py --parts c --handoff-in H --base-model DIR --judge-scores-out S.json   (there)
    .venv/bin/python bench/machine_judge.py --scores S.json --scores-model clean
(there: Django alone on the path, for the training code's translated messages; no database.)
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import random
import sys
import tempfile
import time
from pathlib import Path

from _quality_common import (  # bench/, the script's folder
    DATASETS,
    ROOT,
    bm25_pools,
    data_file,
    fine_tune,
    group,
    mean,
    ndcg_of,
    prepare_base,
    ranked_ndcg,
    read_beir,
)

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --- (a) kuake ----------------------------------------------------------------------------------


def dev_protocols(dev_q, corpus, queries, qrels, pools) -> dict:
    """The two dev protocols. "judged": rerank the query's human-graded titles only, on queries
    whose titles differ in grade (else every order scores 1) -- every pair has a grade, nothing is
    assumed. "pooled": the judged titles plus the query's BM25 pool of the whole corpus with
    unjudged = 0; this rewards finding the judged titles (which a lexical engine pooled in the
    first place) and punishes a model for ranking an unjudged relevant title high."""
    return {
        "judged": [group(q, queries[q], list(qrels[q]), corpus, qrels[q]) for q in dev_q
                   if len(set(qrels[q].values())) > 1],
        "pooled": [group(q, queries[q], list(dict.fromkeys(pools[q] + list(qrels[q]))), corpus, qrels[q])
                   for q in dev_q],
    }


def bm25_on(protocols: dict, index, doc_ids) -> dict:
    """BM25's mean NDCG@10 per protocol, every protocol's titles scored from the index of the whole corpus."""
    from mining.text.tokenize import tokenize

    position = {d: i for i, d in enumerate(doc_ids)}
    return {name: mean(ranked_ndcg(groups, [index.scores(tokenize(g.query))[[position[d] for d in g.doc_ids]]
                                            for g in groups]))
            for name, groups in protocols.items()}


class KuakeSetup:
    """What parts (a) and (c) share: the split by query, the BM25 pools and the two dev protocols."""

    def __init__(self, args):
        from annotate.splits import split_for

        self.corpus, self.queries, self.qrels = read_beir("kuake-qtr-train")
        rng = random.Random(args.seed)
        qids = sorted(q for q in self.qrels if any(g >= 2 for g in self.qrels[q].values()))
        key = (lambda q: self.queries[q]) if args.kuake_split == "text" else (lambda q: q)  # noqa: E731
        train_q = [q for q in qids if split_for(key(q)) == "train"]
        dev_q = [q for q in qids if split_for(key(q)) != "train"]
        rng.shuffle(train_q)
        rng.shuffle(dev_q)
        self.train_q, self.dev_q = train_q[: args.kuake_train or None], dev_q[: args.kuake_dev or None]
        index, doc_ids, self.pools = bm25_pools(self.corpus, self.queries, self.train_q + self.dev_q, args.pool)
        self.protocols = dev_protocols(self.dev_q, self.corpus, self.queries, self.qrels, self.pools)
        self.bm25 = bm25_on(self.protocols, index, doc_ids)
        self.fill = args.fill_negatives
        self.skip = args.fill_skip

    @classmethod
    def of(cls, args) -> KuakeSetup:
        """One per run: parts (a) and (c) share the split and the BM25 pools (built once)."""
        if getattr(args, "kuake_setup", None) is None:
            args.kuake_setup = cls(args)
        return args.kuake_setup

    def fill_docs(self, qid: str) -> list[str]:
        """The unjudged BM25-pool titles a training group of ``qid`` gets as grade 0 (train_groups)."""
        judged = self.qrels[qid]
        return [d for d in self.pools[qid][self.skip:] if d not in judged][: self.fill]

    def train_groups(self):
        """Per train query one listwise group: every judged title with its grade (so the loss sees
        3 above 2 above 1 above 0, as the judged protocol ranks them), then ``--fill-negatives``
        unjudged titles of its BM25 pool as grade 0, skipping the pool's top ``--fill-skip``,
        which hold the unjudged titles most likely relevant (false negatives)."""
        return [group(q, self.queries[q], list(self.qrels[q]) + self.fill_docs(q), self.corpus, self.qrels[q])
                for q in self.train_q]

    def evaluate(self, model_dir, args) -> dict:
        return {name: mean(ndcg_of(model_dir, groups, max_length=args.kuake_max_length))
                for name, groups in self.protocols.items()}


def studio_run(args, groups, *, name: str, out_dir, max_length: int, dev_lists=None):
    """What a training run does with the defaults on ``groups`` (``--dev-share`` held out as its
    dev): (train data, dev groups, candidates, the gate's choice, BM25's per-query dev NDCG).
    ``dev_lists`` (query id -> group), when given, replaces each held-out query's group: part (a)
    trains on judged titles plus unjudged fill negatives, but a studio export holds judged pairs
    only, so the run's dev is judged titles only."""
    from django.conf import settings

    from training.candidates import (
        DEFAULT_CANDIDATES,
        ZERO_SHOT,
        bm25_reference,
        hold_out_dev,
        train_candidates,
    )
    from training.config import TrainConfig
    from training.gate import decide_run

    train_data, dev_groups = hold_out_dev(data_file(groups, name=name), args.dev_share)
    if dev_lists is not None:
        dev_groups = [dev_lists[g.query_id] for g in dev_groups]
    config = TrainConfig(max_length=max_length, seed=args.seed, epochs=args.epochs,
                         **({"learning_rate": args.lr} if args.lr_given else {}))
    candidates = train_candidates(config=config, train_data=train_data, dev_groups=dev_groups,
                                  base_model=settings.BASE_MODEL_DIR, out_dir=out_dir,
                                  names=[n for n in args.candidates.split(",") if n] or list(DEFAULT_CANDIDATES),
                                  bi_encoder_params=json.loads(args.bi_encoder_params or "{}"))
    _, bm25_dev = bm25_reference(dev_groups)
    choice = decide_run({c.name: c.per_query for c in candidates}, {"bm25": bm25_dev}, zero_shot=ZERO_SHOT,
                        min_dev_queries=args.min_dev_queries, seed=args.seed)
    return train_data, dev_groups, candidates, choice, bm25_dev


def part_a(args, tmp, base) -> dict:
    """kuake-qtr through the studio: a training run with the defaults on the train queries
    (``--dev-share`` of them held out as the run's dev), then BM25, every candidate and the model
    the studio would serve on both dev protocols. ``--ce-rows``: also the cross-encoder rows of the
    earlier version of this part (MiniLM with a fresh head, fine-tuned with and without the added
    CJK characters)."""
    from training.candidates import ZERO_SHOT

    kuake = KuakeSetup.of(args)
    protocols = kuake.protocols
    rows: dict[str, dict] = {name: {"bm25": kuake.bm25[name]} for name in protocols}

    def evaluate_ranker_row(row: str, directory) -> None:
        for name, value in evaluate_on(directory, protocols, args).items():
            rows[name][row] = value

    train_groups = kuake.train_groups()
    judged_only = {q: group(q, kuake.queries[q], list(kuake.qrels[q]), kuake.corpus, kuake.qrels[q])
                   for q in kuake.train_q}
    started = time.perf_counter()
    train_data, dev_groups, candidates, choice, bm25_dev = studio_run(
        args, train_groups, name="kuake-train", out_dir=tmp / "kuake-run", max_length=args.kuake_max_length,
        dev_lists=judged_only)
    run_seconds = time.perf_counter() - started
    for candidate in candidates:
        evaluate_ranker_row(candidate.name, candidate.directory or candidate.source)
    # Served: the winner, else the zero-shot base if it beat BM25 on the run's dev (what
    # training.standing measures on judged queries), else BM25.
    zero = next(c for c in candidates if c.name == ZERO_SHOT)
    served = choice.winner or (ZERO_SHOT if (zero.metrics["ndcg@10"] or 0) > mean(bm25_dev) else "bm25")
    for name in protocols:
        rows[name]["served"] = rows[name][served]
    report = {"train_queries": len(train_data.groups), "run_dev_queries": len(dev_groups),
              "dev_queries": {name: len(groups) for name, groups in protocols.items()}, "pool": args.pool,
              "candidates": [c.name for c in candidates], "winner": choice.winner, "served": served, "reason": choice.decision.reason,
              "run_dev_ndcg@10": {c.name: c.metrics["ndcg@10"] for c in candidates},
              "run_seconds": round(run_seconds, 1), "ndcg@10": rows}
    if args.ce_rows:
        from transformers import AutoTokenizer

        from training.vocab import missing_cjk_chars

        evaluate_row = lambda row, directory: [rows[n].__setitem__(row, v)  # noqa: E731
                                               for n, v in kuake.evaluate(directory, args).items()]
        evaluate_row("ce_base", base)
        fine_tune(train_groups, base, tmp / "kuake-ft", args, max_length=args.kuake_max_length)
        evaluate_row("ce_fine_tuned", tmp / "kuake-ft")
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)  # the count only: no model load
        missing = missing_cjk_chars(tokenizer, [text for g in train_groups for text in (g.query, *g.docs)])
        fine_tune(train_groups, base, tmp / "kuake-ft-cjk", args, max_length=args.kuake_max_length,
                  add_cjk_vocab=True)
        evaluate_row("ce_fine_tuned_cjk_vocab", tmp / "kuake-ft-cjk")
        report["added_cjk_chars"] = len(missing)
    return report


# --- (b) trec-dl19 -------------------------------------------------------------------------------


def part_b(args, tmp, base) -> dict:
    """trec-dl19 5-fold CV through the studio: per fold, what a training run does on the other four
    folds' labels (training.candidates + training.gate.decide_run, dev held out of the train
    queries as ``train_reranker`` does), then every candidate, BM25 and the model the studio would
    serve -- the winner, else (nothing promoted) the zero-shot base when it beats BM25 on the
    judged train queries, else BM25 -- scored on the held-out fold's BM25 top ``--dl19-depth``."""
    from training.candidates import ZERO_SHOT
    from training.rankers import load_ranker
    from training.standing import compare_with_bm25

    corpus, queries, qrels = read_beir("trec-dl19")
    run: dict[str, list[tuple[str, float]]] = {}
    with open(DATASETS / "trec-dl19" / "run.bm25.trec", encoding="utf-8") as handle:
        for line in handle:
            qid, _, did, rank, score, _ = line.split()
            if did in corpus:
                run.setdefault(qid, []).append((did, float(score)))
    qids = sorted(q for q in qrels if q in run)
    random.Random(args.seed).shuffle(qids)
    folds = [qids[i::5] for i in range(5)]
    per_query: dict[str, dict] = {"bm25": {}, "served": {}}
    folds_report = []
    pools = {q: [d for d, _ in sorted(run[q], key=lambda x: -x[1])[: args.dl19_depth]] for q in qids}
    for k, test_q in enumerate(folds):
        started = time.perf_counter()
        train_q = [q for q in qids if q not in test_q]
        test_groups = [group(q, queries[q], pools[q], corpus, qrels[q]) for q in test_q]
        # What the studio holds for a train query: its judged documents and the BM25 run's top.
        judged = [group(q, queries[q], list(dict.fromkeys([*qrels[q], *pools[q]])), corpus, qrels[q],
                        split="train") for q in train_q]
        train_data, dev_groups, candidates, choice, _ = studio_run(
            args, judged, name=f"dl19-fold-{k}", out_dir=tmp / f"dl19-{k}", max_length=args.dl19_max_length)
        run_scores = [[dict(run[q])[d] for d in pools[q]] for q in test_q]
        per_query["bm25"].update(ranked_ndcg(test_groups, run_scores, qrels))
        fold = {"train_queries": len(train_data.groups), "dev_queries": len(dev_groups), "test_queries": len(test_q),
                "winner": choice.winner, "reason": choice.decision.reason, "ndcg@10": {}}
        for candidate in candidates:
            directory = candidate.directory or candidate.source
            scores = load_ranker(directory, max_length=args.dl19_max_length).score_lists(
                [(g.query, g.docs) for g in test_groups])
            figures = ranked_ndcg(test_groups, scores, qrels)
            per_query.setdefault(candidate.name, {}).update(figures)
            fold["ndcg@10"][candidate.name] = mean(figures)
            fold.setdefault("dev_ndcg@10", {})[candidate.name] = candidate.metrics["ndcg@10"]
        if choice.winner is not None:
            served = choice.winner
        else:
            # Before any promotion the studio serves the zero-shot base if it beats BM25 on the
            # judged queries (training.standing), else BM25.
            graded = [group(g.query_id, g.query, [i for i in g.doc_ids if i in qrels[g.query_id]], corpus,
                            qrels[g.query_id]) for g in judged]
            zero_shot = next(c for c in candidates if c.name == ZERO_SHOT)
            standing = compare_with_bm25(graded, lambda: load_ranker(zero_shot.source))
            served = ZERO_SHOT if standing["serves"] == "zero-shot base" else "bm25"
        fold["served"] = served
        fold_test = per_query[served]
        per_query["served"].update({q: fold_test[q] for q in test_q if q in fold_test})
        fold["ndcg@10"]["bm25"] = mean({q: per_query["bm25"][q] for q in test_q if q in per_query["bm25"]})
        fold["ndcg@10"]["served"] = mean({q: per_query["served"][q] for q in test_q if q in per_query["served"]})
        fold["seconds"] = round(time.perf_counter() - started, 1)
        folds_report.append(fold)
        print(f"dl19 fold {k}: {json.dumps(fold)}", flush=True)
    if args.per_query_out:
        # Per-query test figures of every row: bench/gate.py --noise-from reads the spread of the
        # difference between two rows from here.
        Path(args.per_query_out).write_text(json.dumps(per_query, indent=1))
    return {"queries": len(qids), "depth": args.dl19_depth, "candidates": [c.name for c in candidates],
            "folds": folds_report,
            "ndcg@10": {row: mean(values) for row, values in per_query.items()}}


# --- (c) noise ---------------------------------------------------------------------------------


def part_c(args, tmp, base) -> dict:
    """Import part (a)'s queries, simulate annotators of ``--profiles``, export, train three ways.

    The three training sets differ only in their labels: each group holds the query's judged
    titles -- with the reference grades (clean), the unweighted majority grade of the three
    simulated annotators, or the weighted listwise export's aggregated grade, soft label, grade
    probabilities and confidence weights (the annotator model) -- plus the same unjudged BM25-pool
    titles as grade 0 that part (a) adds (the simulated annotators can only grade titles that have
    a reference grade). Dev: part (a)'s two protocols with the reference grades.

    The labels need the studio (a database); the training does not. ``--handoff-out`` stops after
    the labels and writes them, ``--handoff-in`` trains from such a file with no database, so the
    training can run on a machine with a GPU and none of the app's services.
    """
    if args.handoff_in:
        with gzip.open(Path(args.handoff_in) / HANDOFF_FILE, "rb") as handle:
            prepared = pickle.load(handle)  # written by --handoff-out of this script: trusted
    else:
        prepared = part_c_labels(args, tmp)
    if args.handoff_out:
        folder = Path(args.handoff_out)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / (HANDOFF_FILE + ".part")  # renamed when whole: no half-written hand-off
        with gzip.open(partial, "wb") as handle:
            pickle.dump(prepared, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, folder / HANDOFF_FILE)
        return {"handoff": str(folder / HANDOFF_FILE), "train_queries": prepared["train_queries"],
                "label_accuracy": prepared["label_accuracy"]}
    return part_c_train(prepared, args, tmp, base)


HANDOFF_FILE = "part_c.pickle.gz"


def part_c_labels(args, tmp) -> dict:
    """Part (c) up to the training: the three label sets, the dev protocols, BM25's rows, the
    exported labels' accuracy and every judged kuake pair (for the machine judge's scores)."""
    from django.core.management import call_command

    from training.data import read_data_file

    kuake = KuakeSetup.of(args)
    corpus, queries, qrels = kuake.corpus, kuake.queries, kuake.qrels
    chosen = kuake.train_q + kuake.dev_q
    docs = sorted({d for q in chosen for d in qrels[q]})
    folder = tmp / "c"
    folder.mkdir()
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"_id": d, "text": corpus[d]}, ensure_ascii=False) + "\n" for d in docs)
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"_id": q, "text": queries[q]}, ensure_ascii=False) + "\n" for q in chosen)
    with open(folder / "qrels.tsv", "w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        handle.writelines(f"{q}\t{d}\t{g}\n" for q in chosen for d, g in qrels[q].items())
    quiet = {"verbosity": 0}
    call_command("migrate", **quiet)
    call_command("import_data", "noise", corpus=folder / "corpus.jsonl", queries=folder / "queries.jsonl",
                 qrels=folder / "qrels.tsv", **quiet)
    call_command("simulate_annotators", "noise", "--profiles", args.profiles, "--noise", str(args.noise),
                 "--overlap", str(args.overlap), "--seed", str(args.seed), **quiet)
    exports = {}
    for name, options in (("weighted", ["--priors", "never"]), ("majority", ["--priors", "never", "--method", "majority"])):
        call_command("export_data", "noise", "--format", "listwise", "--out", str(folder / f"{name}.jsonl"), *options, **quiet)
        exports[name] = {g.query_id: g for g in read_data_file(folder / f"{name}.jsonl").groups}

    def with_fill(exported, qid):
        from training.data import QueryGroup

        extra = kuake.fill_docs(qid)
        n = len(exported)
        return QueryGroup(query_id=qid, query=exported.query, doc_ids=exported.doc_ids + extra,
                          docs=exported.docs + [corpus[d] for d in extra], labels=exported.labels + [0.0] * len(extra),
                          weights=exported.weights + [1.0] * len(extra),
                          soft_labels=[exported.soft_label(i) for i in range(n)] + [0.0] * len(extra),
                          grade_probs=[exported.probs(i) for i in range(n)] + [None] * len(extra))

    training = {"clean": kuake.train_groups()}
    for name in ("majority", "weighted"):
        training[name] = [with_fill(exports[name][q], q) for q in kuake.train_q if q in exports[name]]
    for g in training["majority"]:
        g.weights = [1.0] * len(g)  # unweighted, hard labels
        g.soft_labels, g.grade_probs = None, None
    # Every judged pair of the collection, each query's titles in doc-id order: what
    # bench/machine_judge.py --scores reads back, so a model trained elsewhere is judged here.
    judge = {q: (queries[q], [corpus[d] for d in sorted(qrels[q])]) for q in sorted(qrels)}
    return {"train_queries": len(kuake.train_q), "training": training, "protocols": kuake.protocols,
            "bm25": kuake.bm25, "label_accuracy": {name: _label_accuracy(exports[name], qrels) for name in exports},
            "judge": judge}


def part_c_train(prepared: dict, args, tmp, base) -> dict:
    """Train on each label set, evaluate on both protocols, and each label set's share of the
    clean model's gain over BM25; ``--judge-scores-out``: each model's scores on every judged pair."""
    protocols = prepared["protocols"]
    rows = {name: {"bm25": value} for name, value in prepared["bm25"].items()}
    judge_scores = {}
    # machine_judge.py calibrates on the queries a model trained on and judges the held-out ones
    # (part (c)'s dev queries: drawn like the train queries, none trained on)
    held_out = sorted({g.query_id for groups in protocols.values() for g in groups})
    for name, groups in prepared["training"].items():
        directory = tmp / f"noise-{name}"
        started = time.perf_counter()
        if args.c_track == "bi-encoder":
            train_like_a_run(groups, directory, args)
        else:
            fine_tune(groups, base, directory, args, max_length=args.kuake_max_length, add_cjk_vocab=True,
                      loss=args.ce_loss)
        for protocol, value in evaluate_on(directory, protocols, args).items():
            rows[protocol][name] = value
        if args.judge_scores_out:  # written after each model: a run cut short keeps what it scored
            judge_scores[name] = score_judged_pairs(directory, prepared["judge"], args)
            trained = {n: sorted(g.query_id for g in prepared["training"][n]) for n in judge_scores}
            Path(args.judge_scores_out).write_text(json.dumps({
                "track": args.c_track, "models": judge_scores, "trained_queries": trained,
                "held_out_queries": {n: held_out for n in judge_scores}}))
        print(f"part c: {name} trained and evaluated in {time.perf_counter() - started:.0f} s: "
              f"{ {p: rows[p][name] for p in rows} }", flush=True)
    recovered = {}
    for protocol, row in rows.items():
        gain = row["clean"] - row["bm25"] if "clean" in row else 0  # a hand-off cut to some label sets
        recovered[protocol] = {name: round((row[name] - row["bm25"]) / gain, 3) if gain > 0 else None
                               for name in ("majority", "weighted") if name in row}
    return {"train_queries": prepared["train_queries"], "dev_queries": {p: len(g) for p, g in protocols.items()},
            "track": args.c_track, **({"ce_loss": args.ce_loss} if args.c_track == "cross-encoder" else {}),
            "noise": args.noise, "profiles": args.profiles, "overlap": args.overlap,
            "label_accuracy": prepared["label_accuracy"], "ndcg@10": rows, "gain_recovered": recovered}


def score_judged_pairs(directory, judge: dict, args) -> dict:
    """query id -> the model's score of each judged title (doc-id order), as machine_judge reads them."""
    from training.rankers import load_ranker

    ranker = load_ranker(directory, max_length=args.kuake_max_length)
    qids = list(judge)
    scores = ranker.score_lists([judge[q] for q in qids])
    return {q: [round(float(x), 6) for x in s] for q, s in zip(qids, scores)}


def train_like_a_run(groups, directory, args) -> None:
    """The model a studio run trains by default (training.candidates): the base fine-tuned as a
    bi-encoder with its measured small-collection schedule, the training data's CJK characters
    added, the groups' weights, soft labels and grade probabilities used as the track uses them."""
    from django.conf import settings

    from training.bi_encoder import train_bi_encoder
    from training.candidates import bi_encoder_config
    from training.config import TrainConfig

    config = bi_encoder_config(TrainConfig(max_length=args.kuake_max_length, seed=args.seed))
    train_bi_encoder(config=config, train_groups=groups, base_model=settings.BASE_MODEL_DIR, out_dir=directory)


def evaluate_on(directory, protocols: dict, args) -> dict:
    """Mean NDCG@10 of the model in ``directory`` (any kind training.rankers loads) per protocol."""
    from training.rankers import load_ranker

    ranker = load_ranker(directory, max_length=args.kuake_max_length)
    return {name: mean(ranked_ndcg(groups, ranker.score_lists([(g.query, g.docs) for g in groups])))
            for name, groups in protocols.items()}


def _label_accuracy(exported: dict, qrels: dict) -> float:
    """Share of exported pairs whose label is the reference grade."""
    right = total = 0
    for qid, judged in exported.items():
        for doc_id, label in zip(judged.doc_ids, judged.labels):
            total += 1
            right += int(label == qrels[qid][doc_id])
    return round(right / total, 4) if total else 0.0


def main() -> None:
    from _args import (  # bench/, the script's folder
        fraction,
        int_at_least,
        positive_float,
    )

    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="abc")
    parser.add_argument("--kuake-train", type=int_at_least(0), default=800, help="train queries (0 = all)")
    parser.add_argument("--kuake-dev", type=int_at_least(0), default=200, help="dev queries (0 = all)")
    parser.add_argument("--kuake-split", choices=("id", "text"), default="id",
                        help="kuake: split queries by id (the figures so far) or by text (as the studio does)")
    parser.add_argument("--fill-negatives", type=int_at_least(0), default=4,
                        help="kuake: unjudged BM25-pool titles added to each training group as grade 0")
    parser.add_argument("--fill-skip", type=int_at_least(0), default=5,
                        help="kuake: pool ranks skipped before those (likely unjudged relevant titles)")
    parser.add_argument("--kuake-max-length", type=int_at_least(8), default=64)
    parser.add_argument("--pool", type=int_at_least(1), default=20, help="kuake: BM25 top-k added to each query's pool")
    parser.add_argument("--dl19-depth", type=int_at_least(1), default=30)
    parser.add_argument("--candidates", default="", help="(a), (b): the run's candidates (default: the run default)")
    parser.add_argument("--dev-share", type=fraction, default=0.2, help="(a), (b): train queries held out as dev")
    parser.add_argument("--min-dev-queries", type=int_at_least(1), default=20, help="(a), (b): the gate's minimum")
    parser.add_argument("--ce-rows", action="store_true", help="(a): also the earlier cross-encoder rows")
    parser.add_argument("--bi-encoder-params", default="", help='(a), (b): the run param bi_encoder, JSON, e.g. \'{"learning_rate": 5e-5}\'')
    parser.add_argument("--per-query-out", default="", help="(b): write every row's per-query NDCG@10 here (JSON)")
    parser.add_argument("--dl19-max-length", type=int_at_least(8), default=128)
    parser.add_argument("--noise", type=fraction, default=0.3, help="(c): the honest simulated annotators' noise")
    parser.add_argument("--profiles", default="honest,honest,honest,plus1,random,constant",
                        help="(c): simulate_annotators --profiles")
    parser.add_argument("--overlap", type=int_at_least(1), default=3, help="(c): grades per pair")
    parser.add_argument("--c-track", choices=("bi-encoder", "cross-encoder"), default="bi-encoder",
                        help="(c): the model trained on each label set: what a studio run trains by default "
                             "(the bi-encoder track), or the earlier cross-encoder fine-tuning")
    parser.add_argument("--ce-loss", choices=("listwise", "pointwise", "pointwise-mse"), default="listwise",
                        help="(c), --c-track cross-encoder: the loss (training.losses; pointwise is BCE on the soft label)")
    parser.add_argument("--handoff-out", default="", help="(c): write the label sets and dev protocols to this "
                        "folder and stop before training (needs the studio's database)")
    parser.add_argument("--handoff-in", default="", help="(c): train and evaluate from a --handoff-out folder, "
                        "with no database and none of the app's services (e.g. on a GPU machine)")
    parser.add_argument("--base-model", default="", help="with --handoff-in: the base model's directory "
                        "(default: the studio's BASE_MODEL_DIR)")
    parser.add_argument("--judge-scores-out", default="",
                        help="(c): write each trained model's scores on every judged kuake pair here "
                             "(JSON, for bench/machine_judge.py --scores)")
    parser.add_argument("--epochs", type=int_at_least(1), default=1)
    parser.add_argument("--lr", type=positive_float, default=None, help="default 5e-5 for (a), (c); the run default for (b)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.lr_given = args.lr is not None
    args.lr = args.lr if args.lr is not None else 5e-5
    if not args.parts or set(args.parts) - set("abc"):
        parser.error(f"argument --parts: {args.parts!r}: give one or more of a, b, c")
    if (args.handoff_in or args.handoff_out) and args.parts != "c":
        parser.error("--handoff-in and --handoff-out are for --parts c alone")
    if args.handoff_in and args.handoff_out:
        parser.error("give --handoff-in or --handoff-out, not both")
    if args.handoff_in and not (Path(args.handoff_in) / HANDOFF_FILE).is_file():
        parser.error(f"--handoff-in: {Path(args.handoff_in) / HANDOFF_FILE} does not exist (write it with --handoff-out)")
    if args.base_model and not args.handoff_in:
        parser.error("--base-model is for --handoff-in (the studio's runs use BASE_MODEL_DIR)")
    if args.base_model and not Path(args.base_model).is_dir():
        parser.error(f"--base-model: {args.base_model} is not a directory")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.handoff_in:
            # No database and no app: the training code needs only settings (its messages are
            # translated through Django) and the base model's directory.
            from django.conf import settings

            if args.base_model:
                base_model = Path(args.base_model)
            else:
                from config.settings import BASE_MODEL_DIR as base_model
            settings.configure(USE_I18N=False, BASE_MODEL_DIR=base_model)
        else:
            if "c" in args.parts:
                # Part (c) writes a collection: a scratch SQLite database and DATA_DIR, set before setup.
                os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
                os.environ["DATA_DIR"] = str(tmp / "data")
            import django

            django.setup()
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        base = prepare_base(tmp)
        report = {}
        for part, function in (("a", part_a), ("b", part_b), ("c", part_c)):
            if part in args.parts:
                started = time.perf_counter()
                report[part] = function(args, tmp, base)
                report[part]["seconds"] = round(time.perf_counter() - started, 1)
                print(f"part {part}: {json.dumps(report[part], ensure_ascii=False)}", flush=True)
    import torch

    report["settings"] = {"epochs": args.epochs, "lr": args.lr, "torch_threads": torch.get_num_threads(),
                          "device": "cuda" if torch.cuda.is_available() else "cpu"}
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
