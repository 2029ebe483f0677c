"""Distil the promoted reranker into the bi-encoder dense mining uses, so each promotion makes the
next round of hard negatives better (the teacher's view of relevance, at the miner's speed).

Which model mines (``miner_dir``): the promoted version's miner when it has one on disk, else
the base model. A promoted bi-encoder is its own miner. A cross-encoder or a fusion is distilled:
its scores over the collection's candidate pools (each query's candidates, the teacher's own
top half kept and the rest drawn per epoch: training.bi_encoder's distillation mode) become the
softmax targets of a bi-encoder warm-started from the current miner. Only the teacher's scores
are used -- no label -- so queries nobody has judged yet teach the miner too.

The result is written to a staging directory and renamed into place, then recorded on the
version (``ModelVersion.miner_path``); running it twice does nothing the second time.
"""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings

from .config import TrainConfig
from .data import QueryGroup, groups_from_rows
from .models import ModelVersion
from .rankers import (
    BI_ENCODER,
    Ranker,
    load_ranker,
    model_kind,
)

log = logging.getLogger(__name__)

MAX_QUERIES = 2000         # pools distilled per promotion (the lowest query ids)
MAX_CANDIDATES = 50        # candidates per pool (the best-ranked by retrieval first)
# One pass over the pools, groups of 16 (the teacher's top 8 and 8 drawn from the rest).
DISTIL_CONFIG = dict(epochs=1, batch_size=8, group_size=16, max_length=256, add_cjk_vocab=False)


def miner_dir(collection) -> Path | None:
    """The bi-encoder dense mining should use for ``collection`` (None: the base model)."""
    version = ModelVersion.objects.promoted(collection).first()
    if version is None or not version.miner_path:
        return None
    path = Path(version.miner_path)
    return path if (path / "config.json").is_file() else None


def built_in_miner(path: str | Path) -> Path | None:
    """The promoted model's own bi-encoder when it is one (directly, not inside a fusion)."""
    return Path(path) if model_kind(path) == BI_ENCODER else None


def distil_miner(*, version: ModelVersion, config: TrainConfig | None = None) -> Path:
    """Build (or find) the miner of ``version`` and record it; returns its directory."""
    if version.miner_path and (Path(version.miner_path) / "config.json").is_file():
        return Path(version.miner_path)
    own = built_in_miner(version.path)
    if own is not None:
        ModelVersion.objects.filter(pk=version.pk).update(miner_path=str(own))
        return own
    student = _current_miner(version) or Path(settings.BASE_MODEL_DIR)
    groups = collection_pools(version.collection)
    target = Path(settings.DATA_DIR) / "models" / version.collection.slug / f"miner-v{version.pk}"
    if groups:
        distil_into_bi_encoder(teacher=load_ranker(version.path), groups=groups, student=student,
                               out_dir=target, config=config)
    else:
        log.info("version %s: no candidate pools to distil; the miner stays %s", version.pk, student)
        target = student
    ModelVersion.objects.filter(pk=version.pk).update(miner_path=str(target))
    return target


def distil_into_bi_encoder(*, teacher: Ranker, groups: Sequence[QueryGroup], student: str | Path,
                           out_dir: str | Path, config: TrainConfig | None = None) -> Path:
    """Train ``student`` on ``teacher``'s scores over ``groups`` into ``out_dir`` (atomically)."""
    from .bi_encoder import train_bi_encoder

    out_dir = Path(out_dir)
    config = config or TrainConfig(**DISTIL_CONFIG)
    scores = teacher.score_lists([(group.query, group.docs) for group in groups])
    staging = out_dir.parent / f".{out_dir.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        train_bi_encoder(config=config, train_groups=groups, base_model=student, out_dir=staging,
                         teacher_scores=scores)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def collection_pools(collection) -> list[QueryGroup]:
    """Each query's candidates (at most MAX_CANDIDATES, in creation order: mining adds the best-ranked
    first) with their document texts; queries with fewer than two are left out."""
    from annotate.models import Candidate

    rows = (Candidate.objects.filter(collection=collection).order_by("query_id", "pk")
            .values_list("query_id", "query__text", "document_id", "document__title", "document__text"))
    # No label: the teacher's scores are the targets.
    return groups_from_rows((row + (0.0,) for row in rows.iterator(chunk_size=5000)), max_queries=MAX_QUERIES,
                            max_candidates=MAX_CANDIDATES)


def _current_miner(version: ModelVersion) -> Path | None:
    """The miner of the collection's latest other version that has one (the student to refine)."""
    for path in (ModelVersion.objects.filter(collection_id=version.collection_id).exclude(pk=version.pk)
                 .exclude(miner_path="").order_by("-promoted_at", "-pk").values_list("miner_path", flat=True)):
        if (Path(path) / "config.json").is_file():
            return Path(path)
    return None

