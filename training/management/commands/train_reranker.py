"""`python manage.py train_reranker --train F [--dev F] --base-model DIR --out DIR [--loss ...]
[--epochs N] [--batch-size N] [--max-length N] [--listwise-target label|expected-gain]
[--candidates zero-shot,bi-encoder,cross-encoder,fusion] [--no-distil]`: what a training run does,
from a file: train the candidate models (training.candidates), score them on dev, gate them
(training.gate) and write the one a run would keep into ``--out`` -- the winner, else the best on
dev -- with its kind in ``ranker.json``.

Without ``--dev`` a share of the train queries (by query id) is held out as dev, and the command
says so. Prints one JSON object on the last line of stdout: steps, seconds, the dev metrics of the
base (``base``) and of the model written (``dev``), every candidate, the decision. A bad argument or
file ends with a non-zero exit and one line naming it. An ``--out`` holding anything is refused.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training.candidates import (
    CANDIDATES,
    DEFAULT_CANDIDATES,
    DEV_SHARE,
    ZERO_SHOT,
    bm25_reference,
    check_candidates,
    hold_out_dev,
    keep_directory,
    train_candidates,
)
from training.config import LISTWISE_TARGETS, TrainConfig
from training.data import DataFileError, read_data_file
from training.gate import DEFAULT_MIN_DEV_QUERIES, decide_run
from training.losses import LOSSES
from training.rankers import copy_model_dir
from training.scoring import ModelDirError


class Command(BaseCommand):
    help = "Train candidate rerankers on listwise, pointwise or pairwise JSONL and write the one a run would keep."

    def add_arguments(self, parser):
        parser.add_argument("--train", type=Path, required=True, help="training JSONL")
        parser.add_argument("--dev", type=Path, help="listwise (or pointwise) JSONL to evaluate on")
        parser.add_argument("--base-model", type=Path, default=None,
                            help="local model directory (default: BASE_MODEL_DIR)")
        parser.add_argument("--out", type=Path, required=True, help="output model directory")
        parser.add_argument("--loss", choices=sorted(LOSSES), default="listwise")
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--batch-size", type=int, default=8, help="query groups per step")
        parser.add_argument("--group-size", type=int, default=8, help="candidates per query group")
        parser.add_argument("--max-length", type=int, default=256)
        parser.add_argument("--lr", type=float, default=2e-5)
        parser.add_argument("--grad-accum", type=int, default=1)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--in-batch-negatives", type=int, default=0,
                            help="other queries' documents each query is also scored against, as grade 0")
        parser.add_argument("--temperature", type=float, default=None, help="listwise loss temperature")
        parser.add_argument("--listwise-target", choices=LISTWISE_TARGETS, default="label",
                            help="listwise loss target: softmax of the labels (default), or each grade's gain in "
                                 "expectation over the export's grade_probs (its soft_label where it has none)")
        parser.add_argument("--checkpoint-every", type=int, default=0, help="optimiser steps (0 = none)")
        parser.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES),
                            help=f"comma-separated candidate models to train, of {', '.join(CANDIDATES)} "
                                 "(the zero-shot base is always scored)")
        parser.add_argument("--distil", action=argparse.BooleanOptionalAction, default=True,
                            help="warm-start the cross-encoder by distilling a teacher's scores (default: on)")
        parser.add_argument("--dev-share", type=float, default=DEV_SHARE,
                            help="without --dev: the share of train queries held out as dev (default %(default)s)")
        parser.add_argument("--min-dev-queries", type=int, default=DEFAULT_MIN_DEV_QUERIES,
                            help="the promotion gate's minimum dev size")
        parser.add_argument("--add-cjk-vocab", action=argparse.BooleanOptionalAction, default=True,
                            help="add the training data's CJK characters missing from the vocabulary as tokens "
                                 "(default: on; nothing is added when none is missing)")

    def handle(self, *args, **options):
        base_model = options["base_model"] or settings.BASE_MODEL_DIR
        if base_model is None:
            raise CommandError("--base-model: none given and BASE_MODEL_DIR is not set")
        out: Path = options["out"]
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise CommandError(f"--out {out}: exists and is not empty")
        loss_config = {}
        if options["temperature"] is not None:
            if options["loss"] != "listwise":
                raise CommandError("--temperature applies to --loss listwise only")
            loss_config["temperature"] = options["temperature"]
        if options["listwise_target"] != "label" and options["loss"] != "listwise":
            raise CommandError("--listwise-target applies to --loss listwise only")
        if not 0 < options["dev_share"] < 1:
            raise CommandError(f"--dev-share must be between 0 and 1, got {options['dev_share']}")
        if options["min_dev_queries"] < 1:
            raise CommandError(f"--min-dev-queries must be >= 1, got {options['min_dev_queries']}")
        config = TrainConfig(
            loss=options["loss"], loss_config=loss_config, epochs=options["epochs"],
            batch_size=options["batch_size"], group_size=options["group_size"],
            max_length=options["max_length"], learning_rate=options["lr"], grad_accum=options["grad_accum"],
            seed=options["seed"], checkpoint_every=options["checkpoint_every"],
            add_cjk_vocab=options["add_cjk_vocab"], in_batch_negatives=options["in_batch_negatives"],
            listwise_target=options["listwise_target"],
        )
        staging = out.parent / f".{out.name}.training"
        try:
            names = check_candidates([name.strip() for name in options["candidates"].split(",") if name.strip()])
            config.check()
            train_data = read_data_file(options["train"])
            if options["dev"]:
                dev_groups = read_data_file(options["dev"]).groups
            else:
                train_data, dev_groups = hold_out_dev(train_data, options["dev_share"])
                self.stderr.write(f"no --dev: holding out {len(dev_groups)} of {len(dev_groups) + len(train_data.groups)} "
                                  f"train queries (by query id) as dev to choose between the candidates")
            verbose = options["verbosity"] > 0

            def progress(*, step, total_steps, loss, eta_seconds, epoch, stage=""):
                if verbose and (step == total_steps or step % 10 == 0):
                    eta = f"{eta_seconds:.0f}s" if eta_seconds is not None else "?"
                    self.stderr.write(f"{stage}: step {step}/{total_steps} loss {loss:.4f} eta {eta}")

            started = time.monotonic()
            shutil.rmtree(staging, ignore_errors=True)
            candidates = train_candidates(config=config, train_data=train_data, dev_groups=dev_groups,
                                          base_model=base_model, out_dir=staging, names=names,
                                          distil=options["distil"], progress=progress,
                                          log=(lambda m: self.stderr.write(m)) if verbose else (lambda m: None))
            bm25_metrics, bm25_per_query = bm25_reference(dev_groups)
            choice = decide_run({c.name: c.per_query for c in candidates}, {"bm25": bm25_per_query},
                                zero_shot=ZERO_SHOT, min_dev_queries=options["min_dev_queries"], seed=options["seed"])
            chosen = next(c for c in candidates if c.name == choice.chosen)
            copy_model_dir(keep_directory(chosen, staging), out)
        except (DataFileError, ModelDirError, ValueError) as error:
            raise CommandError(str(error)) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        by_name = {c.name: c for c in candidates}
        self.stdout.write(json.dumps({
            "out": str(out), "kind": chosen.kind, "candidate": chosen.name,
            "train_queries": len(train_data.groups), "dev_queries": choice.decision.dev_queries,
            "steps": chosen.extra.get("steps", 0), "seconds": round(time.monotonic() - started, 2),
            "base": by_name[ZERO_SHOT].metrics, "bm25": bm25_metrics, "dev": chosen.metrics,
            "candidates": {c.name: {**c.metrics, "interval": choice.decisions[c.name].candidate_interval,
                                    "note": c.note, "seconds": round(c.seconds, 2)} for c in candidates},
            "promoted": choice.winner is not None, "reason": choice.decision.reason,
        }, ensure_ascii=False))

