"""A finished model's directory: weights and tokenizer that both
``transformers.AutoModelForSequenceClassification`` and ``sentence_transformers.CrossEncoder``
load, ``training_info.json`` (data snapshot, parameters, metrics) and a model card (README.md)
saying the same for a person.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import TrainConfig
    from .data import DataFile
    from .trainer import TrainResult


def save_model(model, tokenizer, out_dir: Path, *, config: TrainConfig, train_data: DataFile, base_model,
               result: TrainResult) -> None:
    """Write the model, tokenizer, training parameters and model card into ``out_dir``."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.model_max_length = config.max_length  # CrossEncoder reads its max length from here
    model.config.num_labels = 1
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "base_model": str(base_model),
        "data": train_data.summary(),
        "parameters": asdict(config),
        "steps": result.steps,
        "resumed_from_step": result.resumed_from_step,
        "seconds": round(result.seconds, 2),
        "train_queries": result.train_queries,
        "queries_without_positive": result.skipped_queries,
        "final_loss": result.losses[-1] if result.losses else None,
        "metrics": result.metrics,
    }
    (out_dir / "training_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
    (out_dir / "README.md").write_text(model_card(info), encoding="utf-8")


def model_card(info: dict) -> str:
    data = info["data"]
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: text-ranking",
        "tags: [cross-encoder, reranker, relevance-studio]",
        "---",
        "# Cross-encoder reranker (Relevance Studio)",
        "",
        "Scores a (query, document) pair with one logit; higher = more relevant. Load it with",
        "`sentence_transformers.CrossEncoder(path)` or `transformers.AutoModelForSequenceClassification`.",
        "",
        "## Data snapshot",
        f"- file: `{data['path']}` ({data['format']}), sha256 `{data['sha256']}`",
        f"- {data['queries']} queries, {data['pairs']} pairs; {info['train_queries']} queries trained on,"
        f" {info['queries_without_positive']} left out (no positive)",
        "",
        "## Parameters",
        f"- base model: `{info['base_model']}`",
    ]
    lines += [f"- {name}: `{value}`" for name, value in info["parameters"].items()]
    lines += ["", "## Training", f"- {info['steps']} optimiser steps in {info['seconds']} s; final loss {info['final_loss']}"]
    if info.get("resumed_from_step"):
        lines.append(f"- resumed from the checkpoint at step {info['resumed_from_step']} (the time is this attempt's)")
    lines += ["", "## Dev metrics"]
    if info["metrics"]:
        lines += ["| model | queries | NDCG@10 | MRR@10 | Recall@10 | MAP |", "|---|---|---|---|---|---|"]
        for name, m in info["metrics"].items():
            cells = [_cell(m.get(key)) for key in ("queries", "ndcg@10", "mrr@10", "recall@10", "map")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    else:
        lines.append("No dev data was given.")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
