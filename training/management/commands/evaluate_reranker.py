"""`python manage.py evaluate_reranker --model DIR|bm25|none --data F --json`: rerank each query's
candidates of a listwise file and print ``{"queries","ndcg@10","mrr@10","recall@10","map"}``.

``--model DIR`` takes any model a run serves (training.rankers: a cross-encoder, a bi-encoder or a
fusion with BM25). ``none`` keeps the file's order; ``bm25`` scores candidates with mining.text.bm25 over the file's
documents (training/evaluation.py). A bad argument or file ends with a non-zero exit and one line.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.data import DataFileError, read_data_file
from training.evaluation import bm25_scores, file_order_scores, metrics_for
from training.rankers import CrossEncoderRanker, load_ranker
from training.scoring import ModelDirError


class Command(BaseCommand):
    help = "Evaluate a reranker (a model directory, bm25 or none) on a listwise JSONL file."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="model directory, 'bm25' or 'none' (file order)")
        parser.add_argument("--data", type=Path, required=True, help="listwise JSONL with graded candidates")
        parser.add_argument("--max-length", type=int, default=256)
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--json", action="store_true", help="print the metrics as JSON on the last line")

    def handle(self, *args, model: str, data: Path, json: bool, **options):
        if options["max_length"] < 8 or options["batch_size"] < 1:
            raise CommandError("--max-length must be >= 8 and --batch-size >= 1")
        try:
            groups = read_data_file(data).groups
            if model == "none":
                scores = file_order_scores(groups)
            elif model == "bm25":
                scores = bm25_scores(groups)
            else:
                if not Path(model).is_dir():
                    raise CommandError(f"--model {model}: not a directory (nor 'bm25' or 'none')")
                # Any kind a run serves: cross-encoder, bi-encoder or a fusion with BM25.
                ranker = load_ranker(model, max_length=options["max_length"])
                if isinstance(ranker, CrossEncoderRanker):
                    ranker.batch_size = options["batch_size"]
                scores = ranker.score_lists([(group.query, group.docs) for group in groups])
            metrics = metrics_for(groups, scores)
        except (DataFileError, ModelDirError, ValueError) as error:
            raise CommandError(f"{error}") from None
        if json:
            self.stdout.write(_dumps(metrics))
        else:
            self.stdout.write("  ".join(f"{key} {value}" for key, value in metrics.items()))


def _dumps(metrics: dict) -> str:
    return json.dumps(metrics)
