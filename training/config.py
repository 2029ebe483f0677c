"""What a training run may be told: TrainConfig with its checks, a run's ``params`` read into one,
and the defaults every caller shares (positive threshold, promotion margin).

Plain data and checks: models.py reads this module to validate a retrain policy, so it imports
neither the loop nor torch at module level.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from django.utils.translation import gettext as _

from annotate.grades import GRADE_MAX

# A candidate graded at least this is a positive (TREC DL's relevance convention, also the metrics').
DEFAULT_POSITIVE_THRESHOLD = 2.0
# Dev NDCG@10 gain the gate's lower bound must clear against every reference (run params and
# RetrainPolicy default): 0, so the gate promotes what dev shows is better at all, at its
# alpha -- a margin in NDCG points means different things on different collections (training.gate).
DEFAULT_PROMOTION_MARGIN = 0.0
# Tokens' worth of compute one more forward pass costs on the CPU (TrainConfig.chunk_cost).
# Measured on MiniLM, 2 cores, trec-dl19 groups at max_length 128: forward+backward of an epoch
# 30 s in one pass per micro-batch, 23-24 s with 64-512 (2-3 passes), 30 s with 0 (27 passes).
CPU_CHUNK_COST = 256
# TrainConfig.listwise_target's choices (training.losses.listwise.TARGETS; plain here, no torch).
LISTWISE_TARGETS = ("label", "expected-gain")
# Keys of a run's params that are the run's own rather than the trainer's.
# (candidates: which models the run trains, and distil: whether the cross-encoder is warm-started
# from a teacher's scores, training.candidates; min_dev_queries: the promotion gate's minimum dev
# size, training.gate.)
# bi_encoder: TrainConfig fields for the bi-encoder candidate only (over its measured defaults).
RUN_PARAMS = frozenset({"promotion_margin", "candidates", "distil", "min_dev_queries", "bi_encoder"})


class TrainingParamsError(ValueError):
    """A run's ``params`` hold a value training would refuse."""


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
    # (training.batching.padding_chunks): a pass costs this many tokens' worth of compute on top of
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
    # The listwise loss's target (training.losses.listwise): "label" = softmax of the grades;
    # "expected-gain" = each grade's gain in expectation over the export's grade_probs (or its
    # soft label where a candidate has none), so a pair the annotators disagree on gets less of
    # the target than a sure one. Listwise loss only.
    listwise_target: str = "label"

    def loss_options(self) -> dict:
        """What the loss is built with: ``loss_config``, and the listwise loss's target."""
        if self.loss != "listwise":
            return dict(self.loss_config)
        return {**self.loss_config, "target": self.listwise_target}

    def check(self) -> None:
        """ValueError naming the first setting training would refuse (in the user's language: the
        start-a-run and schedule forms show it)."""
        for name in ("epochs", "batch_size", "group_size", "max_length", "grad_accum", "eval_batch_size"):
            value = getattr(self, name)
            if not _int_at_least(value, 1):
                raise ValueError(_("%(name)s must be a positive integer, got %(value)s")
                                 % {"name": name, "value": repr(value)})
        for name in ("in_batch_negatives", "checkpoint_every"):
            value = getattr(self, name)
            if not _int_at_least(value, 0):
                raise ValueError(_("%(name)s must be a non-negative integer, got %(value)s")
                                 % {"name": name, "value": repr(value)})
        if not _is_int(self.seed):
            raise ValueError(_("seed must be an integer, got %(value)s") % {"value": repr(self.seed)})
        for name in ("learning_rate", "weight_decay", "warmup_ratio", "max_grad_norm", "positive_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(_("%(name)s must be a number, got %(value)s") % {"name": name, "value": repr(value)})
        self._check_ranges()
        if self.chunk_cost is not None and not _int_at_least(self.chunk_cost, 0):
            raise ValueError(_("chunk_cost must be a non-negative integer or null, got %(value)s")
                             % {"value": repr(self.chunk_cost)})
        if self.device is not None:
            _check_device(self.device)
        if not isinstance(self.add_cjk_vocab, bool):
            raise ValueError(_("add_cjk_vocab must be true or false, got %(value)s") % {"value": repr(self.add_cjk_vocab)})
        self._check_loss()

    def _check_ranges(self) -> None:
        if self.weight_decay < 0:
            raise ValueError(_("weight_decay must be >= 0, got %(value)s") % {"value": self.weight_decay})
        if not self.max_grad_norm > 0:
            raise ValueError(_("max_grad_norm must be > 0, got %(value)s") % {"value": self.max_grad_norm})
        if not 0 < self.positive_threshold <= GRADE_MAX:
            raise ValueError(_("positive_threshold must be a grade in (0, %(max)s], got %(value)s")
                             % {"max": GRADE_MAX, "value": self.positive_threshold})
        if not isinstance(self.loss_config, dict):
            raise ValueError(_("loss_config must be an object of the loss's options, got %(value)s")
                             % {"value": repr(self.loss_config)})
        if self.group_size < 2:
            raise ValueError(_("group_size must be >= 2, got %(value)s") % {"value": self.group_size})
        if self.max_length < 8:
            raise ValueError(_("max_length must be >= 8, got %(value)s") % {"value": self.max_length})
        if not self.learning_rate > 0:
            raise ValueError(_("learning_rate must be > 0, got %(value)s") % {"value": self.learning_rate})
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(_("warmup_ratio must be in [0, 1), got %(value)s") % {"value": self.warmup_ratio})

    def _check_loss(self) -> None:
        if self.listwise_target not in LISTWISE_TARGETS:
            raise ValueError(_("listwise_target must be one of %(choices)s, got %(value)s")
                             % {"choices": ", ".join(LISTWISE_TARGETS), "value": repr(self.listwise_target)})
        if self.loss != "listwise" and self.listwise_target != "label":
            raise ValueError(_("listwise_target applies to the listwise loss only, not %(loss)s")
                             % {"loss": repr(self.loss)})
        if "target" in self.loss_config:
            raise ValueError(_("loss_config: set the listwise target with listwise_target, not loss_config.target"))
        # torch only here: Django loads models.py (and with it this module) in every process.
        from .losses import build_loss

        build_loss(self.loss, **self.loss_options())  # unknown loss or bad loss config fails here


def _check_device(device) -> None:
    import torch

    try:
        if not isinstance(device, str):
            raise TypeError
        torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(_("device must be cpu, cuda or cuda:N (or null for the default), got %(value)s")
                         % {"value": repr(device)}) from None


def _is_int(value) -> bool:
    # JSON params arrive untyped: true is an int to Python, 2.0 is not one to us.
    return isinstance(value, int) and not isinstance(value, bool)


def _int_at_least(value, low: int) -> bool:
    return _is_int(value) and value >= low


def train_config(params: dict) -> TrainConfig:
    """The TrainConfig of a run's ``params`` (keys that are not TrainConfig fields, such as
    ``promotion_margin``, are the run's own), checked: a bad value is refused when the run is
    started, not after it has waited in the queue."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(params) - known - RUN_PARAMS)
    if unknown:
        # A misspelt key ("learning-rate") would otherwise train with the default without a word.
        raise TrainingParamsError(_("params: unknown %(unknown)s; known: %(known)s") % {
            "unknown": ", ".join(map(repr, unknown)), "known": ", ".join(sorted(known | RUN_PARAMS))})
    try:
        config = TrainConfig(**{key: value for key, value in params.items() if key in known})
        config.check()
        _check_run_params(params, known)
    except (TypeError, ValueError) as error:
        raise TrainingParamsError(_("params: %(problem)s") % {"problem": error}) from None
    return config


def _check_run_params(params: dict, known: set[str]) -> None:
    """The run's own keys (RUN_PARAMS): ValueError naming the first bad one."""
    if "promotion_margin" in params:
        margin = params["promotion_margin"]
        # A difference of NDCG@10 means lies in (-1, 1): the gate refuses a margin outside it.
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not -1 < margin < 1:
            raise ValueError(_("promotion_margin must be a number in (-1, 1), got %(value)s") % {"value": repr(margin)})
    if "candidates" in params:
        from .candidates import check_candidates

        check_candidates(params["candidates"])
    if "bi_encoder" in params:
        overrides = params["bi_encoder"]
        if not isinstance(overrides, dict):
            raise ValueError(_("bi_encoder must be an object of training settings, got %(value)s")
                             % {"value": repr(overrides)})
        unknown_bi = sorted(set(overrides) - known)
        if unknown_bi:
            raise ValueError(_("bi_encoder: unknown %(unknown)s") % {"unknown": ", ".join(map(repr, unknown_bi))})
        TrainConfig(**{**{k: v for k, v in params.items() if k in known}, **overrides}).check()
    if "distil" in params and not isinstance(params["distil"], bool):
        raise ValueError(_("distil must be true or false, got %(value)s") % {"value": repr(params["distil"])})
    if "min_dev_queries" in params and not _int_at_least(params["min_dev_queries"], 1):
        raise ValueError(_("min_dev_queries must be a positive integer, got %(value)s")
                         % {"value": repr(params["min_dev_queries"])})
