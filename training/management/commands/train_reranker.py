"""`python manage.py train_reranker --train F [--dev F] --base-model DIR --out DIR [--loss ...]
[--epochs N] [--batch-size N] [--max-length N] [--listwise-target label|expected-gain]`: fine-tune
a cross-encoder on a JSONL file.

Prints one JSON object on the last line of stdout: steps, seconds, final loss, the dev metrics of
the base and the fine-tuned model, the output directory. A bad argument or file ends with a
non-zero exit and one line naming it. An output directory holding checkpoints of an interrupted
run is resumed; one holding anything else is refused.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training.checkpoints import CHECKPOINTS
from training.config import LISTWISE_TARGETS, TrainConfig
from training.data import DataFileError, read_data_file
from training.losses import LOSSES
from training.scoring import ModelDirError
from training.trainer import train


class Command(BaseCommand):
    help = "Fine-tune a cross-encoder reranker on listwise, pointwise or pairwise JSONL."

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
        parser.add_argument("--add-cjk-vocab", action=argparse.BooleanOptionalAction, default=True,
                            help="add the training data's CJK characters missing from the vocabulary as tokens "
                                 "(default: on; nothing is added when none is missing)")

    def handle(self, *args, **options):
        base_model = options["base_model"] or settings.BASE_MODEL_DIR
        if base_model is None:
            raise CommandError("--base-model: none given and BASE_MODEL_DIR is not set")
        out: Path = options["out"]
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / CHECKPOINTS).is_dir())):
            raise CommandError(f"--out {out}: exists and is not empty (and holds no checkpoints to resume)")
        loss_config = {}
        if options["temperature"] is not None:
            if options["loss"] != "listwise":
                raise CommandError("--temperature applies to --loss listwise only")
            loss_config["temperature"] = options["temperature"]
        if options["listwise_target"] != "label" and options["loss"] != "listwise":
            raise CommandError("--listwise-target applies to --loss listwise only")
        config = TrainConfig(
            loss=options["loss"], loss_config=loss_config, epochs=options["epochs"],
            batch_size=options["batch_size"], group_size=options["group_size"],
            max_length=options["max_length"], learning_rate=options["lr"], grad_accum=options["grad_accum"],
            seed=options["seed"], checkpoint_every=options["checkpoint_every"],
            add_cjk_vocab=options["add_cjk_vocab"], in_batch_negatives=options["in_batch_negatives"],
            listwise_target=options["listwise_target"],
        )
        try:
            config.check()
            train_data = read_data_file(options["train"])
            dev = read_data_file(options["dev"]) if options["dev"] else None
            verbose = options["verbosity"] > 0

            def progress(*, step, total_steps, loss, eta_seconds, epoch):
                if verbose and (step == total_steps or step % 10 == 0):
                    eta = f"{eta_seconds:.0f}s" if eta_seconds is not None else "?"
                    self.stderr.write(f"step {step}/{total_steps} loss {loss:.4f} eta {eta}")

            result = train(config=config, train_data=train_data, base_model=base_model, out_dir=out,
                           dev_groups=dev.groups if dev else None, progress=progress)
        except (DataFileError, ModelDirError, ValueError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(json.dumps({
            "out": str(out), "train_queries": result.train_queries,
            "queries_without_positive": result.skipped_queries, "steps": result.steps,
            "seconds": round(result.seconds, 2), "final_loss": result.losses[-1] if result.losses else None,
            "base": result.metrics.get("base"), "dev": result.metrics.get("fine_tuned"),
        }, ensure_ascii=False))
