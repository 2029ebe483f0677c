"""Training runs: start one from an export snapshot, run it (on the training queue), cancel it.

A run goes pending -> running -> done | failed | cancelled. ``execute_training_run`` claims the
run with a conditional UPDATE (pending -> running), so a redelivered or duplicated task message
does nothing. Only a run that finished training and evaluation creates a ModelVersion, and only
then may promote it: a failed or cancelled run leaves the promoted model as it was.

A worker that dies mid-run (SIGKILL, OOM) leaves the run "running": while it runs, the task holds
the run (config/liveness.py, through the job base's claim) and beats ``heartbeat_at``; the sweep in
training/recovery.py finds the lock free and sends the run again (it resumes from its last
checkpoint, if any) or fails it. Each claim bumps ``attempts``, and every later write of the task
is conditional on its own attempt, so a stale attempt can neither overwrite nor promote.

Evaluation: the base model, BM25, the promoted model (if any) and the new model are scored on the
same dev queries of the snapshot (its ``split: dev`` lines). The new model is promoted when its dev
NDCG@10 beats the promoted model's by ``promotion_margin`` -- or, with nothing promoted yet, beats
BM25's by that margin (a reranker worse than BM25 should not serve).
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .config import DEFAULT_PROMOTION_MARGIN, train_config
from .data import DataFile, read_data_file
from .evaluation import bm25_scores, evaluate_model, metrics_for
from .models import ModelVersion, RetrainPolicy, TrainingRun
from .registry import promote, promoted_version
from .scoring import load_cross_encoder
from .trainer import TrainingCancelled, train

log = logging.getLogger(__name__)


class RunAlreadyActive(Exception):
    """The collection already has a pending or running training run."""


class TrainingDataError(ValueError):
    """The snapshot cannot be trained on (missing file, no train or dev queries)."""


@transaction.atomic
def start_training_run(*, snapshot, created_by=None, base_model: str | None = None, params: dict | None = None,
                       trigger: str = TrainingRun.Trigger.MANUAL) -> TrainingRun:
    """Create a pending run on ``snapshot`` and enqueue it once the transaction commits."""
    if snapshot.status != snapshot.Status.DONE or not snapshot.file_path:
        raise TrainingDataError(f"export snapshot {snapshot.pk} is {snapshot.status}, not done: nothing to train on")
    if snapshot.format != "listwise":
        raise TrainingDataError(f"export snapshot {snapshot.pk} is {snapshot.format}; training needs a listwise export")
    train_config(dict(params or {}))
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                collection_id=snapshot.collection_id, snapshot=snapshot, created_by=created_by, trigger=trigger,
                base_model=str(base_model or settings.BASE_MODEL_DIR or ""), params=dict(params or {}),
            )
    except IntegrityError:
        raise RunAlreadyActive(f"collection {snapshot.collection} already has a pending or running training run") from None
    transaction.on_commit(lambda: send_run(run.pk))
    return run


def send_run(run_id: int) -> bool:
    """Queue the run's task; with the broker down the run stays pending and the sweep sends it later."""
    from .tasks import train_run

    try:
        train_run.delay(run_id)
    except Exception as error:  # noqa: BLE001 -- the run row is committed; the sweep resends it
        log.warning("could not queue training run %s (%s); the recovery sweep will send it", run_id, error)
        return False
    return True


def request_cancel(*, run: TrainingRun) -> TrainingRun:
    """A pending run is cancelled at once; a running one stops after its current step."""
    now = timezone.now()
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.PENDING).update(
        status=TrainingRun.Status.CANCELLED, cancel_requested=True, finished_at=now)
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()
    return run


def run_output_dir(run: TrainingRun) -> Path:
    return Path(settings.DATA_DIR) / "models" / run.collection.slug / f"run-{run.pk}"


class RunTakenOver(Exception):
    """This attempt of the run is no longer the current one (recovered as lost): stop, write nothing."""


def execute_training_run(*, run_id: int) -> TrainingRun | None:
    """Train, evaluate and maybe promote; None if the run was not pending (already taken)."""
    with TrainingRun.objects.select_related("collection", "snapshot").claim(run_id, cancel_requested=False) as run:
        return _execute(run) if run is not None else None


def _execute(run: TrainingRun) -> TrainingRun:
    out_dir = run_output_dir(run)
    this_attempt = TrainingRun.objects.owned_by_attempt(run.pk, run.attempts)
    try:
        outcome = _train_and_evaluate(run, out_dir)
        _record(run, out_dir, outcome)
    except RunTakenOver:
        # Another attempt owns the run (and its output directory) now: leave both alone.
        log.warning("training run %s: attempt %s was superseded; stopping without writing", run.pk, run.attempts)
    except Exception as error:  # noqa: BLE001 -- any failure ends the run, never the promoted model
        cancelled = isinstance(error, TrainingCancelled)
        if not cancelled:
            log.exception("training run %s failed", run.pk)
        if this_attempt.update(
            status=TrainingRun.Status.CANCELLED if cancelled else TrainingRun.Status.FAILED,
            error="" if cancelled else f"{type(error).__name__}: {error}", finished_at=timezone.now(),
            eta_seconds=None,
        ):
            shutil.rmtree(out_dir, ignore_errors=True)
    run.refresh_from_db()
    return run


def _train_and_evaluate(run: TrainingRun, out_dir: Path) -> dict:
    snapshot = run.snapshot
    path = Path(snapshot.file_path)
    data = read_data_file(path)
    train_groups = [g for g in data.groups if g.split not in ("dev", "test")]
    dev_groups = [g for g in data.groups if g.split == "dev"]
    if not train_groups:
        raise TrainingDataError(f"{path}: snapshot {snapshot.pk} has no train queries")
    if not dev_groups:
        raise TrainingDataError(f"{path}: snapshot {snapshot.pk} has no dev queries to compare models on")
    config = train_config(run.params)
    base_model = run.base_model or settings.BASE_MODEL_DIR
    reporter = _ProgressReporter(run.pk, attempt=run.attempts)
    result = train(
        config=config, train_data=DataFile(path=path, format=data.format, groups=train_groups, sha256=data.sha256),
        base_model=base_model, out_dir=out_dir, dev_groups=dev_groups,
        progress=reporter.progress, should_cancel=reporter.should_cancel,
    )
    metrics = {"base": result.metrics["base"], "bm25": metrics_for(dev_groups, bm25_scores(dev_groups)),
               "new": result.metrics["fine_tuned"]}
    reporter.beat()  # training is over; evaluating the promoted model below takes a while
    current = promoted_version(collection=run.collection)
    if current is not None:
        model, tokenizer = load_cross_encoder(current.path)
        metrics["promoted"] = evaluate_model(model, tokenizer, dev_groups, max_length=config.max_length)
        metrics["promoted"]["version"] = current.pk
    return {"metrics": metrics, "steps": result.steps, "loss": result.losses[-1] if result.losses else None,
            "promoted_version": current.pk if current else None}


def promotion_margin(run: TrainingRun) -> float:
    if "promotion_margin" in run.params:
        return float(run.params["promotion_margin"])
    policy = RetrainPolicy.objects.filter(collection_id=run.collection_id).first()
    return policy.promotion_margin if policy else DEFAULT_PROMOTION_MARGIN


@transaction.atomic
def _record(run: TrainingRun, out_dir: Path, outcome: dict) -> None:
    # Lock the run row and check that this attempt still owns it: a superseded attempt must neither
    # create a version nor promote (a duplicate of the current attempt waits here, then finds it done).
    owned = TrainingRun.objects.owned_by_attempt(run.pk, run.attempts).select_for_update().exists()
    if not owned:
        raise RunTakenOver(run.pk)
    metrics = outcome["metrics"]
    new = metrics["new"]["ndcg@10"] or 0.0
    # Compare against what serves now (re-read under the transaction: another run may have
    # promoted meanwhile; then its evaluation above is stale and we stay conservative).
    current = promoted_version(collection=run.collection)
    if current is not None and current.pk == outcome["promoted_version"]:
        baseline, against = metrics["promoted"]["ndcg@10"] or 0.0, "promoted"
    elif current is not None:
        baseline, against = float("inf"), "promoted"
    else:
        baseline, against = metrics["bm25"]["ndcg@10"] or 0.0, "bm25"
    margin = promotion_margin(run)
    promote_it = new >= baseline + margin
    metrics["decision"] = {"against": against, "baseline_ndcg@10": baseline if baseline != float("inf") else None,
                           "new_ndcg@10": new, "margin": margin, "promoted": promote_it}
    version = ModelVersion.objects.create(collection=run.collection, run=run, path=str(out_dir), metrics=metrics)
    if promote_it:
        promote(version=version)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.DONE, metrics=metrics, promoted=promote_it, output_dir=str(out_dir),
        step=outcome["steps"], loss=outcome["loss"], eta_seconds=0, finished_at=timezone.now(),
    )


class _ProgressReporter:
    """Writes step/loss/ETA and the heartbeat to the run row (at most twice a second) and reads the
    cancel flag. Writes are conditional on this attempt: when the run was recovered as lost
    meanwhile, training stops with RunTakenOver."""

    def __init__(self, run_id: int, every: float = 0.5, *, attempt: int = 0):
        self.run_id, self.every, self.last, self.attempt = run_id, every, 0.0, attempt

    def _update(self, **fields) -> None:
        if not TrainingRun.objects.beat(self.run_id, self.attempt, **fields):
            raise RunTakenOver(self.run_id)

    def beat(self) -> None:
        self._update()

    def progress(self, *, step, total_steps, loss, eta_seconds, epoch):
        now = time.monotonic()
        if now - self.last < self.every and step != total_steps:
            return
        self.last = now
        self._update(step=step, total_steps=total_steps, loss=loss, eta_seconds=eta_seconds)

    def should_cancel(self) -> bool:
        return TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()
