"""Fine-tune a cross-encoder on fixed-size query groups with a ranking loss.

One optimiser step: ``grad_accum`` micro-batches of ``batch_size`` query groups each; every real
(query, doc) pair of a micro-batch is scored -- in one forward pass, or on the CPU in the
length-sorted passes that waste least on padding (``chunk_cost``) -- the logits are scattered into
a ``[n_groups, group_size]`` matrix and handed to the loss (training.losses) with the labels, the
per-candidate weights and the padding mask. With ``in_batch_negatives`` each query is also scored
against documents of the micro-batch's other groups, appended to its group as grade 0. AdamW (no
decay on biases and LayerNorm), linear warm-up then linear decay to 0, gradient-norm clipping,
seeded shuffling and dropout, CUDA with bf16 autocast when there is a GPU, CPU otherwise.

Checkpoints (``checkpoint_every`` steps) hold the weights, optimiser, scheduler, RNG states and the
position in the epoch; ``train`` resumes from the latest one in ``out_dir/checkpoints`` and then
follows exactly the batches the uninterrupted run would have (the batch order is a function of
the seed and the epoch). A finished run writes a directory that both
``transformers.AutoModelForSequenceClassification`` and ``sentence_transformers.CrossEncoder``
load, with a model card (README.md) naming the data, the parameters and the metrics.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data import (
    DEFAULT_POSITIVE_THRESHOLD,
    MAX_GRADE,
    DataFile,
    EncodedGroups,
    QueryGroup,
    bucketed_batches,
    training_groups,
)
from .evaluation import evaluate_model
from .losses import append_negatives, build_loss
from .scoring import forward_logits, load_cross_encoder, pick_device
from .vocab import add_tokens_with_distinct_embeddings, missing_cjk_chars

CHECKPOINTS = "checkpoints"
# Tokens' worth of compute one more forward pass costs on the CPU (TrainConfig.chunk_cost).
# Measured on MiniLM, 2 cores, trec-dl19 groups at max_length 128: forward+backward of an epoch
# 30 s in one pass per micro-batch, 23-24 s with 64-512 (2-3 passes), 30 s with 0 (27 passes).
CPU_CHUNK_COST = 256


class TrainingCancelled(Exception):
    """The cancel check said stop; the output directory holds no finished model."""


@dataclass
class TrainConfig:
    loss: str = "listwise"
    loss_config: dict = field(default_factory=dict)
    epochs: int = 1
    batch_size: int = 8          # query groups per micro-batch
    group_size: int = 8          # candidates per query group
    max_length: int = 256
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    seed: int = 42
    positive_threshold: float = DEFAULT_POSITIVE_THRESHOLD
    checkpoint_every: int = 0    # optimiser steps; 0 = no checkpoints
    eval_batch_size: int = 64
    device: str | None = None
    # Each micro-batch's pairs are sorted by length and run in as many forward passes as pay off
    # (training.data.padding_chunks): a pass costs this many tokens' worth of compute on top of
    # its padded tokens. None = by device: CPU_CHUNK_COST on the CPU, where the padded tokens
    # decide the time; one pass on CUDA, where a small model is bound by kernel launches.
    chunk_cost: int | None = None
    # Borrowed negatives per query group: each query is also scored against this many documents of
    # the micro-batch's other groups, as grade-0 candidates (training.losses.in_batch). Costs one
    # forward pair each.
    in_batch_negatives: int = 0
    # Add the training data's CJK characters missing from the vocabulary as tokens with their own
    # embeddings (training.vocab). On by default: the default base model is English MiniLM, which
    # reads most Chinese as [UNK] and then cannot beat BM25 on Chinese (bench/quality.py, kuake:
    # pooled dev NDCG@10 0.64 without, 0.91 with, BM25 0.88); on text without CJK characters, or a
    # base model that has them, nothing is added and the model is unchanged.
    add_cjk_vocab: bool = True

    def check(self) -> None:
        for name in ("epochs", "batch_size", "group_size", "max_length", "grad_accum", "eval_batch_size"):
            value = getattr(self, name)
            if not _int_at_least(value, 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("in_batch_negatives", "checkpoint_every"):
            value = getattr(self, name)
            if not _int_at_least(value, 0):
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        for name in ("learning_rate", "weight_decay", "warmup_ratio", "max_grad_norm", "positive_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if not 0 < self.positive_threshold <= MAX_GRADE:
            raise ValueError(f"positive_threshold must be a grade in (0, {MAX_GRADE:g}], got {self.positive_threshold}")
        if not isinstance(self.loss_config, dict):
            raise ValueError(f"loss_config must be an object of the loss's options, got {self.loss_config!r}")
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2, got {self.group_size}")
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8, got {self.max_length}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.chunk_cost is not None and not _int_at_least(self.chunk_cost, 0):
            raise ValueError(f"chunk_cost must be a non-negative integer or null, got {self.chunk_cost!r}")
        if self.device is not None:
            try:
                if not isinstance(self.device, str):
                    raise TypeError
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"device must be cpu, cuda or cuda:N (or null for the default), got {self.device!r}") from None
        if not isinstance(self.add_cjk_vocab, bool):
            raise ValueError(f"add_cjk_vocab must be true or false, got {self.add_cjk_vocab!r}")
        build_loss(self.loss, **self.loss_config)  # unknown loss or bad loss config fails here


def _is_int(value) -> bool:
    # JSON params arrive untyped: true is an int to Python, 2.0 is not one to us.
    return isinstance(value, int) and not isinstance(value, bool)


def _int_at_least(value, low: int) -> bool:
    return _is_int(value) and value >= low


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    seconds: float
    losses: list[float]
    metrics: dict
    train_queries: int
    skipped_queries: int
    resumed_from_step: int = 0   # the checkpoint this run continued from; 0 = started fresh


ProgressCallback = Callable[..., None]


def train(
    *,
    config: TrainConfig,
    train_data: DataFile,
    base_model: str | Path,
    out_dir: str | Path,
    dev_groups: Sequence[QueryGroup] | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train on ``train_data``, evaluate on ``dev_groups``, write the model to ``out_dir``.

    ``progress(step=, total_steps=, loss=, eta_seconds=, epoch=)`` is called after every optimiser
    step; ``should_cancel()`` is checked after every step (throttle it on the caller's side if it
    is costly) and stops the run with TrainingCancelled. ``config.add_cjk_vocab`` adds tokens to
    the model and tokenizer before training (training.vocab).
    """
    config.check()
    started = time.monotonic()
    out_dir = Path(out_dir)
    _seed_everything(config.seed)
    device = pick_device(config.device)
    model, tokenizer = load_cross_encoder(base_model, device=str(device), eval_mode=False)
    groups, skipped = training_groups(train_data.groups, group_size=config.group_size,
                                      positive_threshold=config.positive_threshold)
    if not groups:
        raise ValueError(
            f"{train_data.path}: no query has a candidate graded >= {config.positive_threshold:g}; nothing to train on"
        )
    metrics: dict = {}
    if dev_groups:
        # The base model as given: before any token is added to it.
        metrics["base"] = evaluate_model(model, tokenizer, dev_groups, max_length=config.max_length,
                                         batch_size=config.eval_batch_size)
    if config.add_cjk_vocab:
        # Before any checkpoint is loaded: the same data gives the same tokens, so a resumed run
        # rebuilds the embedding matrix its checkpoint was saved with.
        texts = (text for group in groups for text in (group.query, *group.docs))
        add_tokens_with_distinct_embeddings(model, tokenizer, missing_cjk_chars(tokenizer, texts), seed=config.seed)
    encoded = EncodedGroups(tokenizer, groups, group_size=config.group_size, max_length=config.max_length)
    chunk_cost = config.chunk_cost if config.chunk_cost is not None else (CPU_CHUNK_COST if device.type == "cpu" else None)
    loss_fn = build_loss(config.loss, **config.loss_config)
    micro_batches = math.ceil(len(encoded) / config.batch_size)
    steps_per_epoch = math.ceil(micro_batches / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs

    # The fused kernel updates every parameter in one pass (CPU and CUDA): 16% less time per step
    # than the default foreach kernel for MiniLM on 2 CPU cores (measured A/B, same data and seed),
    # and what transformers' Trainer -- the anchor of bench/train.py -- uses by default.
    optimizer = torch.optim.AdamW(_parameter_groups(model, config.weight_decay), lr=config.learning_rate,
                                  fused=device.type in ("cpu", "cuda"))
    warmup = int(config.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _linear_schedule(step, warmup, total_steps))

    state = {"step": 0, "epoch": 0, "micro_batch": 0, "losses": []}
    checkpoint = latest_checkpoint(out_dir)
    if checkpoint is not None:
        state = _load_checkpoint(checkpoint, model, optimizer, scheduler, device)
    model.train()
    resumed_step = state["step"]
    window: list[float] = []
    for epoch in range(state["epoch"], config.epochs):
        batches = bucketed_batches(encoded.lengths, config.batch_size, seed=config.seed * 1000 + epoch)
        first = state["micro_batch"] if epoch == state["epoch"] else 0
        for index in range(first, len(batches)):
            # Borrowed negatives drawn from (seed, epoch, micro-batch): a resumed run draws the same.
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch * 10_007 + index)
            batch = encoded.batch(batches[index], chunk_cost=chunk_cost, in_batch_negatives=config.in_batch_negatives,
                                  generator=generator)
            loss = _micro_batch_loss(model, loss_fn, batch, config.group_size) / config.grad_accum
            loss.backward()
            window.append(loss.item())
            last_in_epoch = index == len(batches) - 1
            if (index + 1) % config.grad_accum and not last_in_epoch:
                continue
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["losses"].append(sum(window))
            window = []
            state["epoch"], state["micro_batch"] = (epoch + 1, 0) if last_in_epoch else (epoch, index + 1)
            if config.checkpoint_every and state["step"] % config.checkpoint_every == 0 and state["step"] < total_steps:
                _save_checkpoint(out_dir, model, optimizer, scheduler, state)
            if progress is not None:
                elapsed = time.monotonic() - started
                done_here = state["step"] - resumed_step
                eta = elapsed / done_here * (total_steps - state["step"]) if done_here else None
                progress(step=state["step"], total_steps=total_steps, loss=state["losses"][-1],
                         eta_seconds=eta, epoch=epoch)
            if should_cancel is not None and should_cancel():
                raise TrainingCancelled(f"cancelled at step {state['step']} of {total_steps}")
    model.eval()
    if dev_groups:
        metrics["fine_tuned"] = evaluate_model(model, tokenizer, dev_groups, max_length=config.max_length,
                                               batch_size=config.eval_batch_size)
    result = TrainResult(
        out_dir=out_dir, steps=state["step"], seconds=time.monotonic() - started, losses=state["losses"],
        metrics=metrics, train_queries=len(groups), skipped_queries=skipped, resumed_from_step=resumed_step,
    )
    save_model(model, tokenizer, out_dir, config=config, train_data=train_data, base_model=base_model, result=result)
    shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
    return result


def _micro_batch_loss(model, loss_fn, batch: dict, group_size: int) -> torch.Tensor:
    logits = torch.cat([forward_logits(model, features).float().reshape(-1) for features in batch["features"]])
    n_groups = batch["labels"].shape[0]
    device = logits.device
    negative_mask = batch["negative_mask"]
    n_negatives = negative_mask.shape[1]
    own = n_groups * group_size
    # Padding positions get 0 (masked out by the loss); index_put keeps the graph.
    flat = torch.zeros(own + n_groups * n_negatives, device=device).index_put((batch["positions"].to(device),), logits)
    scores = flat[:own].view(n_groups, group_size)
    labels, weights, mask = batch["labels"].to(device), batch["weights"].to(device), batch["mask"].to(device)
    if n_negatives:
        scores, labels, mask, weights = append_negatives(scores, labels, mask, flat[own:].view(n_groups, n_negatives),
                                                         negative_mask.to(device), weights)
    return loss_fn(scores, labels, weights=weights, mask=mask)


def _parameter_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or "bias" in name else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _linear_schedule(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- checkpoints -------------------------------------------------------------------------------


def latest_checkpoint(out_dir: Path) -> Path | None:
    folder = Path(out_dir) / CHECKPOINTS
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("step-*") if (p / "state.json").is_file()]
    return max(found, key=lambda p: int(p.name.split("-")[1]), default=None)


def _save_checkpoint(out_dir: Path, model, optimizer, scheduler, state: dict) -> Path:
    folder = out_dir / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".step-", dir=folder))
    torch.save(model.state_dict(), staging / "model.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
               staging / "trainer.pt")
    (staging / "state.json").write_text(json.dumps(state))
    target = folder / f"step-{state['step']}"
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)  # a checkpoint is complete or absent, never half-written
    for older in folder.glob("step-*"):
        if older != target:
            shutil.rmtree(older, ignore_errors=True)
    return target


def _load_checkpoint(path: Path, model, optimizer, scheduler, device) -> dict:
    model.load_state_dict(torch.load(path / "model.pt", map_location=device))
    saved = torch.load(path / "trainer.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    if saved.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return json.loads((path / "state.json").read_text())


# --- output -----------------------------------------------------------------------------------


def save_model(model, tokenizer, out_dir: Path, *, config: TrainConfig, train_data: DataFile, base_model, result: TrainResult) -> None:
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
