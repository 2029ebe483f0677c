"""Fine-tune a bi-encoder (a sentence-embedding model) on graded query groups, or distil a
teacher's scores into it.

A (query, document) pair scores ``scale * cosine(query vector, document vector)``; the vectors
come from training.encoders (the same pooling as inference), so what is trained here ranks the
same in the bi-encoder ranker and in dense mining.

Two modes:

- **Labels** (``teacher_scores=None``): each query's group is drawn per epoch as the cross-encoder
  trainer draws it (training.batching.training_groups with EpochDraw: positives first, hardest
  negatives most often; a query with no positive is left out and counted) and scored with the
  listwise loss (training.losses, ``config.listwise_target`` and the export's weights, soft
  labels and grade probabilities). In-batch negatives come free with a bi-encoder -- every
  document is embedded once per micro-batch -- so every document of the micro-batch's other
  groups joins each query's group as a grade-0 candidate (training.losses.in_batch), except a
  text identical to one of the query's own documents or to a document of another group with the
  same query text: those may be relevant to it.
- **Distillation** (``teacher_scores``, one array per training group aligned with its documents,
  e.g. a promoted cross-encoder's logits): the loss is ``KL(softmax(teacher / T) ||
  softmax(scale * cos))`` over each group's candidates, mean over groups (T =
  ``teacher_temperature``, default 1: a cross-encoder's logits are already on a scale where a
  few units separate relevant from not; raise it to pass on more of the teacher's view of the
  lower ranks). Labels and weights are not read, so a group needs no positive; a group larger
  than ``group_size`` keeps the teacher's top half and draws the rest per epoch, uniformly (a
  spread of what the teacher thinks, not only the top). No in-batch negatives: the teacher
  scored no other group's documents for this query.

One optimiser step is ``grad_accum`` micro-batches of ``batch_size`` groups; each distinct text of
a micro-batch (query or document) is embedded once, in the length-sorted forward passes that
waste least on padding (training.batching.padding_chunks). AdamW (fused), linear warm-up then
linear decay, gradient clipping, seeded draws and dropout -- as training.trainer. Runs are short
(a few hundred steps for a small collection), so there is no checkpoint and no resume: a run
that stops starts again.

Defaults, measured on trec-dl19 (all-MiniLM-L6-v2, 30 train / 13 held-out queries, BM25 top 100
reranked, two splits; 2 CPU cores):

- ``scale`` 20, MultipleNegativesRankingLoss's: cosines in [-1, 1] become logits in [-20, 20].
- The listwise loss's temperature 0.25 unless ``config.loss_config`` sets one
  (``DEFAULT_LABEL_TEMPERATURE``). The label target ``softmax(grade / T)`` asks, at its optimum,
  a logit gap of ``3 / T`` between a grade-3 and a grade-0 document, i.e. a cosine gap of
  ``3 / (T * scale)``: 0.15 at T = 1, flatter than the base model already ranks, so training
  pulls irrelevant documents toward relevant ones. Dev NDCG@10 on the two splits (base 0.766 /
  0.688; 4 epochs of groups of 8, learning rate 5e-5 / 2e-5): T = 1 0.691 / 0.670, T = 0.5
  0.764, T = 0.25 0.786 / 0.702, T = 0.1 0.786.
- ``SMALL_COLLECTION_PARAMS``: 4 epochs of groups of 8, 4 groups per step, learning rate 2e-5
  (the usual for MiniLM; 5e-5 ranked the same, 1e-4 worse: 0.762; 8 epochs 0.779): 32 steps,
  about 35 s for 30 queries.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from annotate.grades import GRADE_MAX, GRADES

from .batching import (
    EpochDraw,
    TextEncodings,
    TrainingGroup,
    bucketed_batches,
    distillation_groups,
    pad_features,
    padding_chunks,
    training_groups,
)
from .config import CPU_CHUNK_COST, TrainConfig
from .data import QueryGroup
from .encoders import Pooling, load_encoder_parts, pool, save_bi_encoder
from .losses import append_negatives, build_loss, grade_probs_from_soft_labels
from .rankers import BI_ENCODER, write_ranker_card
from .scoring import autocast_for, pick_device
from .trainer import (
    TrainingCancelled,
    linear_schedule,
    optimizer_step,
    parameter_groups,
    seed_everything,
)
from .vocab import add_tokens_with_distinct_embeddings, missing_cjk_chars

# Measured choices: see the module docstring.
DEFAULT_SCALE = 20.0
DEFAULT_LABEL_TEMPERATURE = 0.25        # the listwise loss's, unless config.loss_config sets one
DEFAULT_TEACHER_TEMPERATURE = 1.0
# TrainConfig values for a collection of tens of queries (a run's params may start from these).
SMALL_COLLECTION_PARAMS = {"epochs": 4, "batch_size": 4, "group_size": 8, "learning_rate": 2e-5}
LABELS, DISTILLATION = "labels", "distillation"

__all__ = ["SMALL_COLLECTION_PARAMS", "BiEncoderResult", "TrainingCancelled", "distillation_groups",
           "train_bi_encoder"]


@dataclass
class BiEncoderResult:
    out_dir: Path
    steps: int
    seconds: float
    losses: list[float]
    train_queries: int
    skipped_queries: int   # labels: no positive; distillation: fewer than two candidates


@dataclass
class _Batch:
    """One micro-batch: its distinct texts and, per group, where its query and documents are."""

    texts: list[str]
    query_rows: list[int]
    doc_rows: list[list[int]]


def train_bi_encoder(
    *,
    config: TrainConfig,
    train_groups: Sequence[QueryGroup],
    base_model: str | Path,
    out_dir: str | Path,
    teacher_scores: Sequence[np.ndarray] | None = None,
    scale: float = DEFAULT_SCALE,
    teacher_temperature: float = DEFAULT_TEACHER_TEMPERATURE,
    progress: Callable[..., None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> BiEncoderResult:
    """Fine-tune ``base_model`` on ``train_groups`` (or distil ``teacher_scores`` into it) and
    write a sentence-transformers directory to ``out_dir`` (see the module docstring).

    Reads from ``config``: epochs, batch_size, group_size, max_length, learning_rate,
    weight_decay, warmup_ratio, grad_accum, max_grad_norm, seed, positive_threshold, device,
    chunk_cost, add_cjk_vocab and the listwise loss's options; ``in_batch_negatives`` and
    ``checkpoint_every`` are the cross-encoder's (here every borrowed negative is taken, and no
    checkpoint is written). ``progress(step=, total_steps=, loss=, eta_seconds=, epoch=)`` after
    every optimiser step; ``should_cancel()`` is checked after every step and stops the run with
    TrainingCancelled, ``out_dir`` then holding no model.
    """
    config.check()
    teacher = _checked_options(config, train_groups, teacher_scores, scale, teacher_temperature)
    started = time.monotonic()
    out_dir = Path(out_dir)

    def epoch_groups(epoch: int) -> tuple[list[TrainingGroup], list[np.ndarray] | None, int]:
        draw = EpochDraw(config.seed, epoch)
        if teacher is None:
            groups, skipped = training_groups(train_groups, group_size=config.group_size,
                                              positive_threshold=config.positive_threshold, draw=draw)
            return groups, None, skipped
        return distillation_groups(train_groups, teacher, group_size=config.group_size, draw=draw)

    groups, targets, skipped = epoch_groups(0)
    if not groups and teacher is None:
        raise ValueError(f"train_groups: no query has a candidate graded >= {config.positive_threshold:g}; "
                         "nothing to train on (pass teacher_scores to distil without labels)")
    if not groups:
        raise ValueError("train_groups: no query has two candidates or more; nothing to distil")

    seed_everything(config.seed)
    device = pick_device(config.device)
    model, tokenizer, pooling = load_encoder_parts(base_model, device=str(device))
    if config.add_cjk_vocab:
        # Every text a draw may take, not one epoch's: the tokens must not depend on the draw.
        threshold = config.positive_threshold
        texts = (text for group in train_groups
                 if teacher is not None or any(label >= threshold for label in group.labels)
                 for text in (group.query, *group.docs))
        add_tokens_with_distinct_embeddings(model, tokenizer, missing_cjk_chars(tokenizer, texts), seed=config.seed)
    max_length = min(config.max_length, tokenizer.model_max_length or config.max_length)
    encodings = TextEncodings(tokenizer, max_length=max_length)
    chunk_cost = config.chunk_cost if config.chunk_cost is not None else (
        CPU_CHUNK_COST if device.type == "cpu" else None)
    loss_fn = None if teacher is not None else build_loss(
        config.loss, **{"temperature": DEFAULT_LABEL_TEMPERATURE, **config.loss_options()})

    micro_batches = math.ceil(len(groups) / config.batch_size)
    total_steps = math.ceil(micro_batches / config.grad_accum) * config.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.learning_rate,
                                  fused=device.type in ("cpu", "cuda"))
    warmup = int(config.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: linear_schedule(step, warmup, total_steps))

    model.train()
    step, losses, window = 0, [], []
    for epoch in range(config.epochs):
        if epoch:
            groups, targets, _ = epoch_groups(epoch)
        encodings.rows([text for group in groups for text in (group.query, *group.docs)])  # one tokenizer call
        lengths = [max(encodings.lengths([group.query, *group.docs])) for group in groups]
        batches = bucketed_batches(lengths, config.batch_size, seed=config.seed * 1000 + epoch)
        for index, batch_groups in enumerate(batches):
            chosen = [groups[i] for i in batch_groups]
            batch = _batch_texts(chosen)
            vectors = _embed(model, pooling, encodings, batch.texts, device=device, chunk_cost=chunk_cost)
            if teacher is None:
                loss = _label_loss(loss_fn, chosen, batch, vectors, scale, config.group_size)
            else:
                loss = _distillation_loss([targets[i] for i in batch_groups], batch, vectors, scale,
                                          config.group_size, teacher_temperature)
            loss = loss / config.grad_accum
            loss.backward()
            window.append(loss.item())
            last_in_epoch = index == len(batches) - 1
            if (index + 1) % config.grad_accum and not last_in_epoch:
                continue
            optimizer_step(model, optimizer, scheduler, config.max_grad_norm)
            step += 1
            losses.append(sum(window))
            window = []
            if progress is not None:
                elapsed = time.monotonic() - started
                progress(step=step, total_steps=total_steps, loss=losses[-1],
                         eta_seconds=elapsed / step * (total_steps - step), epoch=epoch)
            if should_cancel is not None and should_cancel():
                raise TrainingCancelled(f"cancelled at step {step} of {total_steps}")
    model.eval()
    result = BiEncoderResult(out_dir=out_dir, steps=step, seconds=time.monotonic() - started, losses=losses,
                             train_queries=len(groups), skipped_queries=skipped)
    _save(model, tokenizer, pooling, out_dir, config=config, base_model=base_model, result=result,
          mode=LABELS if teacher is None else DISTILLATION, scale=scale, teacher_temperature=teacher_temperature,
          loss=loss_fn.get_config_dict() if loss_fn is not None else None)
    return result


def _batch_texts(groups: Sequence[TrainingGroup]) -> _Batch:
    position: dict[str, int] = {}
    for group in groups:
        for text in (group.query, *group.docs):
            position.setdefault(text, len(position))
    return _Batch(texts=list(position), query_rows=[position[group.query] for group in groups],
                  doc_rows=[[position[doc] for doc in group.docs] for group in groups])


def _embed(model, pooling: Pooling, encodings: TextEncodings, texts: Sequence[str], *, device: torch.device,
           chunk_cost: int | None) -> torch.Tensor:
    """Unit vectors of ``texts`` in their order, [n_texts, dim], attached to the graph."""
    rows = encodings.rows(texts)
    if chunk_cost is None:
        chunks = [list(range(len(rows)))]
    else:
        chunks = padding_chunks([len(encodings.encoded["input_ids"][row]) for row in rows], chunk_cost=chunk_cost)
    parts = []
    for chunk in chunks:
        features = pad_features(encodings.tokenizer, encodings.encoded, [rows[i] for i in chunk])
        features = {key: value.to(device, non_blocking=True) for key, value in features.items()}
        with autocast_for(device):
            hidden = model(**features).last_hidden_state
        parts.append(pool(hidden.float(), features["attention_mask"], pooling))
    order = torch.tensor([i for chunk in chunks for i in chunk], device=device)
    vectors = torch.empty(len(rows), parts[0].shape[1], device=device).index_copy(0, order, torch.cat(parts))
    # Cosine whatever the pooling says: a model without a Normalize module still ranks by angle here.
    return torch.nn.functional.normalize(vectors, p=2, dim=1)


def _group_scores(batch: _Batch, vectors: torch.Tensor, scale: float, group_size: int):
    """(scores [n_groups, group_size] with 0 at padding, mask, and scale * cos of every query
    against every text of the micro-batch, [n_groups, n_texts])."""
    similarity = scale * vectors[batch.query_rows] @ vectors.T
    n = len(batch.doc_rows)
    columns = torch.zeros(n, group_size, dtype=torch.long, device=vectors.device)
    mask = torch.zeros(n, group_size, dtype=torch.bool, device=vectors.device)
    for row, docs in enumerate(batch.doc_rows):
        columns[row, : len(docs)] = torch.tensor(docs, device=vectors.device)
        mask[row, : len(docs)] = True
    scores = similarity.gather(1, columns).masked_fill(~mask, 0.0)
    return scores, mask, similarity


def _label_loss(loss_fn, groups: Sequence[TrainingGroup], batch: _Batch, vectors: torch.Tensor, scale: float,
                group_size: int) -> torch.Tensor:
    device = vectors.device
    scores, mask, similarity = _group_scores(batch, vectors, scale, group_size)
    labels, weights, soft_labels, grade_probs = _targets(groups, group_size)
    # Borrowed negatives: every document of the micro-batch (queries are not candidates) that is
    # not one of this query's own, nor a document of another group asking the same query.
    is_doc = torch.zeros(len(batch.texts), dtype=torch.bool)
    is_doc[[row for rows in batch.doc_rows for row in rows]] = True
    negative_mask = is_doc.repeat(len(groups), 1)
    for row, group in enumerate(groups):
        for other, other_group in enumerate(groups):
            if other == row or other_group.query == group.query:
                negative_mask[row, batch.doc_rows[other]] = False
    scores, labels, mask, weights = append_negatives(scores, labels.to(device), mask, similarity,
                                                     negative_mask.to(device), weights.to(device))
    # A borrowed negative is a sure grade 0 (training.losses.in_batch).
    sure_zero = torch.zeros(len(groups), len(batch.texts))
    soft_labels = torch.cat([soft_labels, sure_zero], dim=1)
    grade_probs = torch.cat([grade_probs, grade_probs_from_soft_labels(sure_zero)], dim=1)
    return loss_fn(scores, labels, weights=weights, mask=mask, soft_labels=soft_labels.to(device),
                   grade_probs=grade_probs.to(device))


def _targets(groups: Sequence[TrainingGroup], group_size: int):
    """labels, weights, soft labels [n_groups, group_size] and grade_probs [.., 4], 0 at padding."""
    n = len(groups)
    labels, weights, soft_labels = torch.zeros(n, group_size), torch.zeros(n, group_size), torch.zeros(n, group_size)
    grade_probs = torch.zeros(n, group_size, len(GRADES))
    for row, group in enumerate(groups):
        count = len(group.docs)
        labels[row, :count] = torch.tensor(group.labels)
        weights[row, :count] = torch.tensor(group.weights)
        soft_labels[row, :count] = torch.tensor(
            group.soft_labels if group.soft_labels is not None else [label / GRADE_MAX for label in group.labels])
        spread = grade_probs_from_soft_labels(soft_labels[row, :count])
        given = group.grade_probs or [None] * count
        grade_probs[row, :count] = torch.stack(
            [torch.tensor(probs) if probs is not None else spread[column] for column, probs in enumerate(given)])
    return labels, weights, soft_labels, grade_probs


def _distillation_loss(targets: Sequence[np.ndarray], batch: _Batch, vectors: torch.Tensor, scale: float,
                       group_size: int, temperature: float) -> torch.Tensor:
    """Mean over groups of KL(softmax(teacher / T) || softmax(student)) over the group's candidates."""
    scores, mask, _ = _group_scores(batch, vectors, scale, group_size)
    teacher = torch.zeros(len(targets), group_size, device=vectors.device)
    for row, values in enumerate(targets):
        teacher[row, : len(values)] = torch.as_tensor(values, dtype=torch.float32)
    teacher_log = torch.log_softmax((teacher / temperature).masked_fill(~mask, float("-inf")), dim=1)
    student_log = torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    # masked_fill, not a product: 0 * -inf at padding would be NaN.
    per_candidate = (teacher_log.exp() * (teacher_log - student_log)).masked_fill(~mask, 0.0)
    return per_candidate.sum(dim=1).mean()


def _checked_options(config: TrainConfig, groups: Sequence[QueryGroup], teacher_scores, scale: float,
                     teacher_temperature: float) -> list[np.ndarray] | None:
    """The teacher scores as float64 arrays (None in label mode), after checking every option."""
    if config.loss != "listwise":
        raise ValueError(f"loss: the bi-encoder trains with the listwise loss, got {config.loss!r}")
    for name, value in (("scale", scale), ("teacher_temperature", teacher_temperature)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not len(groups):
        raise ValueError("train_groups: empty; nothing to train on")
    if teacher_scores is None:
        return None
    if len(teacher_scores) != len(groups):
        raise ValueError(f"teacher_scores: {len(teacher_scores)} arrays for {len(groups)} training groups; "
                         "give one per group, aligned with its documents")
    teacher = []
    for index, (group, values) in enumerate(zip(groups, teacher_scores)):
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(group.docs),):
            raise ValueError(f"teacher_scores[{index}]: shape {values.shape} for query {group.query_id!r} "
                             f"with {len(group.docs)} documents; give one score per document, in its order")
        if not np.isfinite(values).all():
            raise ValueError(f"teacher_scores[{index}]: not finite for query {group.query_id!r}")
        teacher.append(values)
    return teacher


def _save(model, tokenizer, pooling: Pooling, out_dir: Path, *, config: TrainConfig, base_model, result,
          mode: str, scale: float, teacher_temperature: float, loss: dict | None) -> None:
    # The base model's reading length at inference (MiniLM: 256), or the training length when that
    # is longer: a run that trains at 128 for speed should not cut every served document at 128.
    positions = getattr(model.config, "max_position_embeddings", None) or 10**6
    max_length = min(max(config.max_length, pooling.max_length), positions)
    save_bi_encoder(model, tokenizer, out_dir, pooling=pooling, max_length=max_length)
    write_ranker_card(out_dir, BI_ENCODER, base_model=str(base_model), trained_on=mode, scale=scale,
                      pooling=pooling.mode, normalize=pooling.normalize)
    info = {
        "kind": BI_ENCODER,
        "base_model": str(base_model),
        "trained_on": mode,
        "scale": scale,
        "teacher_temperature": teacher_temperature if mode == DISTILLATION else None,
        "listwise_loss": loss,
        "parameters": asdict(config),
        "pooling": asdict(pooling) | {"max_length": max_length},
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "train_queries": result.train_queries,
        "queries_left_out": result.skipped_queries,
        "final_loss": result.losses[-1] if result.losses else None,
    }
    (out_dir / "training_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
