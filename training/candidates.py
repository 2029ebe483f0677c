"""A training run's candidate models, trained and scored on the same dev queries.

Labels from a first fifty queries do not make a cross-encoder better than a good sentence-embedding
model used as it is (bench/quality.py: MiniLM fine-tuned as a cross-encoder on trec-dl19 folds
scores far below BM25, the same MiniLM's cosine far above it). So a run does not bet on one
model: it produces several and the promotion gate (training.gate) picks one, or none.

- ``zero-shot``: the base model as it is (cosine for a sentence-embedding model, the head for a
  cross-encoder): what the team had before labelling.
- ``bi-encoder``: the base fine-tuned as a bi-encoder on the labels (training.bi_encoder).
- ``cross-encoder``: warm-started by distilling a teacher's scores over the train queries'
  candidate pools -- the promoted model's, else the fine-tuned bi-encoder's, else the base's --
  then fine-tuned on the labels (training.trainer, twice).
- ``fusion``: the best of the above (by dev NDCG@10) mixed with BM25 (training.rankers), the
  weight fitted on the train queries for the zero-shot base, on dev (cross-fitted) for a model
  trained on the train queries (``_fit_fusion``).

Distillation reuses the listwise trainer: a teacher score s becomes the pseudo-grade
``clip(3 + (s - max s) / T, 0, 3)`` within its list, and the listwise target ``softmax(grade)`` is
then exactly the teacher's ``softmax(s / T)`` over every candidate within 3 T of the list's best (the
rest share the floor). Each candidate's directory sits under ``<out>/candidates/<name>/``; the
zero-shot base is copied (hard links) only when it is the one the run keeps.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from annotate.grades import GRADE_MAX

from .config import TrainConfig
from .data import DataFile, QueryGroup
from .evaluation import bm25_scores, metrics_and_per_query, metrics_for
from .rankers import (
    BI_ENCODER,
    CROSS_ENCODER,
    FUSION,
    Ranker,
    copy_model_dir,
    fit_fusion_weight,
    fuse,
    list_bm25,
    load_ranker,
    model_kind,
    save_fusion,
    write_ranker_card,
)

ZERO_SHOT, BI, CROSS, FUSED = "zero-shot", "bi-encoder", "cross-encoder", "fusion"
CANDIDATES = (ZERO_SHOT, BI, CROSS, FUSED)
# Which candidates a run trains unless told (run param "candidates"). The cross-encoder is left out
# by figures: from MiniLM on a small collection it ranks far below the zero-shot bi-encoder
# (bench/quality.py (b), trec-dl19 fold 0 with the run defaults on 2 CPU cores: test NDCG@10 0.109
# against 0.759) and costs most of a run's time; a team with thousands of queries and a GPU
# turns it on.
DEFAULT_CANDIDATES = (ZERO_SHOT, BI, FUSED)
# The share of train queries held out as dev when there is no dev split (train_reranker without
# --dev, a run on a snapshot without dev queries).
DEV_SHARE = 0.2
# Folds of the dev cross-fitting of a trained model's fusion weight (_fit_fusion).
FUSION_FOLDS = 5
# Temperature of the teacher's softmax when distilling (cosine teachers are scaled first).
DISTIL_TEMPERATURE = 1.0


@dataclass
class Candidate:
    name: str
    kind: str
    metrics: dict                     # queries, ndcg@10, mrr@10, recall@10, map
    per_query: dict[str, float]       # dev NDCG@10 per query (queries with an NDCG only)
    seconds: float
    directory: Path | None            # None until kept (the zero-shot base is not copied unless kept)
    note: str = ""
    source: Path | None = None        # where the zero-shot base lives
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, **self.metrics, "seconds": round(self.seconds, 2),
                "note": self.note, "per_query": self.per_query,
                "directory": str(self.directory) if self.directory else None, **self.extra}


def check_candidates(names) -> tuple[str, ...]:
    """The run's candidates in training order; the zero-shot base is always among them."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"candidates must be a non-empty list of {', '.join(CANDIDATES)}, got {names!r}")
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown:
        raise ValueError(f"candidates: unknown {', '.join(map(repr, unknown))}; known: {', '.join(CANDIDATES)}")
    return tuple(name for name in CANDIDATES if name in names or name == ZERO_SHOT)


def evaluate_ranker(ranker: Ranker, groups: Sequence[QueryGroup]) -> tuple[dict, dict[str, float]]:
    """(metrics, per-query NDCG@10) of the ranker on the groups."""
    return metrics_and_per_query(groups, ranker.score_lists([(group.query, group.docs) for group in groups]))


def train_candidates(
    *,
    config: TrainConfig,
    train_data: DataFile,
    dev_groups: Sequence[QueryGroup],
    base_model: str | Path,
    out_dir: str | Path,
    names: Sequence[str] = DEFAULT_CANDIDATES,
    teacher_dir: str | Path | None = None,
    distil: bool = True,
    bi_encoder_params: dict | None = None,
    progress: Callable | None = None,
    should_cancel: Callable[[], bool] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> list[Candidate]:
    """Train and score each named candidate on ``dev_groups``; their directories under ``out_dir``."""
    names = check_candidates(list(names))
    out_dir = Path(out_dir)
    root = out_dir / "candidates"
    base_model = Path(base_model)
    base_kind = model_kind(base_model)
    if base_kind == FUSION:
        raise ValueError(f"{base_model}: a fusion cannot be a base model; give its inner model")
    found: list[Candidate] = []

    def keep(candidate: Candidate) -> Candidate:
        found.append(candidate)
        log(f"{candidate.name}: dev NDCG@10 {candidate.metrics['ndcg@10']}")
        return candidate

    # The zero-shot base is always scored: every other candidate must beat it to be promoted.
    started = time.monotonic()
    ranker = load_ranker(base_model, device=config.device, max_length=config.max_length)
    metrics, per_query = evaluate_ranker(ranker, dev_groups)
    del ranker
    keep(Candidate(ZERO_SHOT, base_kind, metrics, per_query, time.monotonic() - started, None,
                   note="the base model as it is", source=base_model))
    if BI in names:
        from .bi_encoder import train_bi_encoder

        started = time.monotonic()
        directory = root / BI
        bi_config = bi_encoder_config(config, bi_encoder_params)
        result = train_bi_encoder(config=bi_config, train_groups=train_data.groups, base_model=base_model,
                                  out_dir=directory, progress=_staged(progress, BI), should_cancel=should_cancel)
        metrics, per_query = evaluate_ranker(load_ranker(directory, device=config.device), dev_groups)
        keep(Candidate(BI, BI_ENCODER, metrics, per_query, time.monotonic() - started, directory,
                       note="fine-tuned as a bi-encoder on the labels", extra={"steps": result.steps}))
    if CROSS in names:
        started = time.monotonic()
        # The teacher: the promoted model, else the fine-tuned bi-encoder, else the base itself.
        teacher_path = Path(teacher_dir) if teacher_dir else (root / BI if BI in names else base_model)
        directory = root / CROSS
        note, steps = _train_cross_encoder(config=config, train_data=train_data, base_model=base_model,
                                           teacher_path=teacher_path if distil else None, directory=directory,
                                           progress=progress, should_cancel=should_cancel)
        metrics, per_query = evaluate_ranker(load_ranker(directory, device=config.device,
                                                            max_length=config.max_length), dev_groups)
        keep(Candidate(CROSS, CROSS_ENCODER, metrics, per_query, time.monotonic() - started, directory, note=note,
                       extra={"steps": steps}))
    if FUSED in names:
        started = time.monotonic()
        inner = max(found, key=lambda c: c.metrics["ndcg@10"] or 0.0)
        weight, metrics, per_query, fitted_on = _fit_fusion(inner, train_data, dev_groups, config)
        directory = root / FUSED
        save_fusion(directory, inner_dir=inner.directory or inner.source, bm25_weight=weight,
                    inner_candidate=inner.name, fitted_on=fitted_on)
        keep(Candidate(FUSED, FUSION, metrics, per_query, time.monotonic() - started, directory,
                       note=f"{inner.name} mixed with BM25 at weight {weight:g} (fitted on {fitted_on})",
                       extra={"bm25_weight": weight, "inner": inner.name}))
    return found


def bi_encoder_config(config: TrainConfig, params: dict | None = None) -> TrainConfig:
    """The bi-encoder candidate's settings: its own measured schedule (training.bi_encoder's
    SMALL_COLLECTION_PARAMS) over the run's length, seed, device..., then the run's ``bi_encoder``
    param on top."""
    from .bi_encoder import SMALL_COLLECTION_PARAMS

    return replace(config, **{**SMALL_COLLECTION_PARAMS, **(params or {})})


def _fit_fusion(inner: Candidate, train_data: DataFile, dev_groups, config) -> tuple[float, dict, dict, str]:
    """(BM25 weight, dev metrics, dev per-query NDCG, what the weight was fitted on).

    The zero-shot base never saw the train queries, so its weight is fitted on them. A model
    trained on them ranks them too well: fitted there, the weight would lean on the model (on
    kuake-qtr it came out 0, the fusion a copy of the bi-encoder). Its weight is fitted on dev
    instead, and the per-query dev figures the gate reads are cross-fitted: each dev query is
    fused with the weight fitted on the other folds of dev, so no query is scored with a weight
    it chose itself."""
    ranker = load_ranker(inner.directory or inner.source, device=config.device, max_length=config.max_length)
    dev_model = ranker.score_lists([(g.query, g.docs) for g in dev_groups])
    dev_bm25 = [list_bm25(g.query, g.docs) for g in dev_groups]

    def ndcg_on(groups):
        return lambda scores: metrics_for(groups, scores)["ndcg@10"] or 0.0

    if inner.name == ZERO_SHOT:
        train_groups = [g for g in train_data.groups if any(label > 0 for label in g.labels)]
        weight, _ = fit_fusion_weight(ranker.score_lists([(g.query, g.docs) for g in train_groups]),
                                      [list_bm25(g.query, g.docs) for g in train_groups], ndcg_on(train_groups))
        fused = [fuse(m, b, weight) for m, b in zip(dev_model, dev_bm25)]
        return (weight, *metrics_and_per_query(dev_groups, fused), f"{len(train_groups)} train queries")
    weight, _ = fit_fusion_weight(dev_model, dev_bm25, ndcg_on(dev_groups))
    folds = min(FUSION_FOLDS, len(dev_groups))
    fused: list = [None] * len(dev_groups)
    for fold in range(folds):
        rest = [i for i in range(len(dev_groups)) if i % folds != fold]
        fold_weight = weight if not rest else fit_fusion_weight(
            [dev_model[i] for i in rest], [dev_bm25[i] for i in rest], ndcg_on([dev_groups[i] for i in rest]))[0]
        for i in range(fold, len(dev_groups), folds):
            fused[i] = fuse(dev_model[i], dev_bm25[i], fold_weight)
    return (weight, *metrics_and_per_query(dev_groups, fused),
            f"{len(dev_groups)} dev queries, cross-fitted in {folds} folds")


def keep_directory(candidate: Candidate, out_dir: str | Path) -> Path:
    """The candidate's model directory, copying the zero-shot base in when it is the one kept."""
    if candidate.directory is None:
        target = Path(out_dir) / "candidates" / candidate.name
        copy_model_dir(candidate.source, target)
        write_ranker_card(target, candidate.kind, base_model=str(candidate.source), trained=False)
        candidate.directory = target
    return candidate.directory


def hold_out_dev(data: DataFile, share: float) -> tuple[DataFile, list]:
    """(train without the held-out queries, held-out groups): a query is held out by a hash of its
    id, so the same file always splits the same way; at least one query each side."""
    if len(data.groups) < 2:
        raise ValueError(f"{data.path}: {len(data.groups)} query; holding out dev needs at least 2 (or give --dev)")
    ranked = sorted(data.groups, key=lambda g: hashlib.sha256(g.query_id.encode()).hexdigest())
    n_dev = min(len(ranked) - 1, max(1, round(share * len(ranked))))
    dev_ids = {g.query_id for g in ranked[:n_dev]}
    train = [g for g in data.groups if g.query_id not in dev_ids]
    return (DataFile(path=data.path, format=data.format, groups=train, sha256=data.sha256),
            [g for g in data.groups if g.query_id in dev_ids])


def bm25_reference(dev_groups: Sequence[QueryGroup]) -> tuple[dict, dict[str, float]]:
    scores = bm25_scores(dev_groups)
    return metrics_and_per_query(dev_groups, scores)


def _train_cross_encoder(*, config, train_data, base_model, teacher_path, directory, progress, should_cancel
                         ) -> tuple[str, int]:
    """(note, optimiser steps on the labels); ``teacher_path`` None = no distillation."""
    from .trainer import train

    start_from, note = base_model, "fine-tuned on the labels"
    warm = directory.parent / f"{directory.name}-distilled"
    if teacher_path is not None:
        teacher = load_ranker(teacher_path, device=config.device, max_length=config.max_length)
        pools = [g for g in train_data.groups if len(g) >= 2]
        teacher_scores = teacher.score_lists([(g.query, g.docs) for g in pools])
        del teacher
        scale = 20.0 if model_kind(teacher_path) == BI_ENCODER else 1.0  # cosine -> logits, as the bi-encoder trains
        distilled = DataFile(path=train_data.path, format=train_data.format, sha256=train_data.sha256,
                             groups=[_pseudo_graded(g, s * scale) for g, s in zip(pools, teacher_scores)])
        train(config=replace(config, listwise_target="label", loss="listwise", loss_config={}),
              train_data=distilled, base_model=base_model, out_dir=warm,
              progress=_staged(progress, f"{CROSS} (distil)"), should_cancel=should_cancel)
        start_from = warm
        note = f"distilled from {model_kind(teacher_path)} {Path(teacher_path).name}, then fine-tuned on the labels"
    try:
        result = train(config=config, train_data=train_data, base_model=start_from, out_dir=directory,
                       progress=_staged(progress, CROSS), should_cancel=should_cancel)
    finally:
        shutil.rmtree(warm, ignore_errors=True)
    write_ranker_card(directory, CROSS_ENCODER, base_model=str(base_model),
                      teacher=str(teacher_path) if teacher_path else None)
    return note, result.steps


def _pseudo_graded(group: QueryGroup, scores: np.ndarray) -> QueryGroup:
    scores = np.asarray(scores, dtype=np.float64)
    grades = np.clip(GRADE_MAX + (scores - scores.max()) / DISTIL_TEMPERATURE, 0.0, GRADE_MAX)
    return QueryGroup(query_id=group.query_id, query=group.query, doc_ids=list(group.doc_ids),
                      docs=list(group.docs), labels=[float(g) for g in grades], weights=[1.0] * len(group),
                      split=group.split, retrieval_ranks=group.retrieval_ranks)


def _staged(progress: Callable | None, stage: str) -> Callable | None:
    """A trainer's progress callback that also names the run's stage (each trainer counts its own steps)."""
    if progress is None:
        return None

    def report(**fields):
        progress(stage=stage, **fields)
    return report
