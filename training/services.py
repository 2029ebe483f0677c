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

Evaluation: the run's candidate models (training.candidates: the zero-shot base, a fine-tuned
bi-encoder, a distilled cross-encoder, a fusion with BM25), BM25 and the promoted model (if any)
are scored on the same dev queries of the snapshot (its ``split: dev`` lines). The promotion gate
(training.gate.decide_run) promotes the best candidate whose paired-bootstrap lower bound of the
dev NDCG@10 gain clears ``promotion_margin`` against the promoted model, BM25 and the zero-shot
base, on at least ``min_dev_queries`` dev queries; else nothing (staff may override with a reason:
training.override). The run keeps one model version: the winner, else its best candidate on dev.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .candidates import (
    DEFAULT_CANDIDATES,
    DEV_SHARE,
    ZERO_SHOT,
    bm25_reference,
    evaluate_ranker,
    hold_out_dev,
    keep_directory,
    train_candidates,
)
from .config import DEFAULT_PROMOTION_MARGIN, train_config
from .data import DataFile, read_data_file
from .gate import DEFAULT_MIN_DEV_QUERIES, FAILS, decide_run, mean_interval
from .models import ModelVersion, RetrainPolicy, TrainingRun
from .rankers import load_ranker
from .registry import promote, promoted_version
from .trainer import TrainingCancelled
from .wording import HELD_OUT_DEV, SNAPSHOT_DEV, STALE_FIGURES

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
        raise TrainingDataError(_("export snapshot %(id)s is %(status)s, not done: nothing to train on")
                                % {"id": snapshot.pk, "status": snapshot.status})
    if snapshot.format != "listwise":
        raise TrainingDataError(_("export snapshot %(id)s is %(format)s; training needs a listwise export")
                                % {"id": snapshot.pk, "format": snapshot.format})
    train_config(dict(params or {}))
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                collection_id=snapshot.collection_id, snapshot=snapshot, created_by=created_by, trigger=trigger,
                base_model=str(base_model or settings.BASE_MODEL_DIR or ""), params=dict(params or {}),
            )
    except IntegrityError:
        raise RunAlreadyActive(_("collection %(collection)s already has a pending or running training run")
                               % {"collection": snapshot.collection}) from None
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


def send_miner_distillation(version_id: int) -> bool:
    """After a promotion: ask for the promoted version's machine judge run (training.judge_runs: a
    row first, which the recovery sweep sends again if the broker is down) and queue its miner
    (training.miner); with the broker down, mining keeps the previous miner until the next promotion."""
    from .judge_runs import JudgeRunAlreadyActive, request_machine_judge
    from .models import ModelVersion
    from .tasks import distil_miner

    version = ModelVersion.objects.select_related("collection").filter(pk=version_id).first()
    if version is not None:
        try:  # a row first: the training page shows the judge queued even while the broker is down
            request_machine_judge(collection=version.collection, version=version, replace_pending=True)
        except JudgeRunAlreadyActive:
            pass  # one is running with the model served before: when done, it asks for this version's
    try:
        distil_miner.delay(version_id)
    except Exception as error:  # noqa: BLE001 -- the promotion stands; only the miner waits
        log.warning("could not queue the miner of model version %s (%s)", version_id, error)
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
    train_data = DataFile(path=path, format=data.format, groups=train_groups, sha256=data.sha256)
    # Stored in English (the worker's language); the run page words it again (training.wording).
    dev_note = SNAPSHOT_DEV % {"n": len(dev_groups)}
    if not dev_groups:
        # A small collection's split may give no dev query at all: hold out a share of the train
        # queries (by query id, as train_reranker does) rather than fail; the gate then says how
        # few they are.
        try:
            train_data, dev_groups = hold_out_dev(train_data, DEV_SHARE)
        except ValueError:
            raise TrainingDataError(f"{path}: snapshot {snapshot.pk} has no dev queries and too few train queries "
                                    f"({len(train_groups)}) to hold some out") from None
        dev_note = HELD_OUT_DEV % {"n": len(dev_groups), "train": len(train_groups)}
    config = train_config(run.params)
    base_model = run.base_model or settings.BASE_MODEL_DIR
    reporter = _ProgressReporter(run.pk, attempt=run.attempts)
    current = promoted_version(collection=run.collection)
    candidates = train_candidates(
        config=config, train_data=train_data, dev_groups=dev_groups, base_model=base_model, out_dir=out_dir,
        names=run.params.get("candidates", DEFAULT_CANDIDATES),
        teacher_dir=current.path if current is not None else None, distil=run.params.get("distil", True),
        bi_encoder_params=run.params.get("bi_encoder"),
        progress=reporter.progress, should_cancel=reporter.should_cancel,
    )
    reporter.beat()  # training is over; evaluating the promoted model below takes a while
    bm25_metrics, bm25_per_query = bm25_reference(dev_groups)
    references = {"bm25": {**bm25_metrics, "per_query": bm25_per_query}}
    if current is not None:
        promoted_metrics, promoted_per_query = evaluate_ranker(
            load_ranker(current.path, max_length=config.max_length), dev_groups)
        references["promoted"] = {**promoted_metrics, "per_query": promoted_per_query, "version": current.pk}
    return {"candidates": candidates, "references": references, "promoted_version": current.pk if current else None,
            "dev_note": dev_note}


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
    candidates = {c.name: c for c in outcome["candidates"]}
    references = outcome["references"]
    margin = promotion_margin(run)
    choice = decide_run(
        {name: c.per_query for name, c in candidates.items()},
        {name: ref["per_query"] for name, ref in references.items()},
        zero_shot=ZERO_SHOT, margin=margin,
        min_dev_queries=int(run.params.get("min_dev_queries", DEFAULT_MIN_DEV_QUERIES)), seed=run.pk,
    )
    promote_it = choice.winner is not None
    reason, branch = choice.decision.reason, choice.decision.branch
    # Compare against what serves now (re-read under the transaction: another run may have
    # promoted meanwhile; then this run's comparison is stale and we stay conservative).
    current = promoted_version(collection=run.collection)
    if (current.pk if current else None) != outcome["promoted_version"]:
        promote_it, branch = False, FAILS
        reason = STALE_FIGURES
    chosen = candidates[choice.chosen]
    directory = keep_directory(chosen, out_dir)
    _drop_other_candidates(out_dir, keep=directory)
    metrics = run_metrics(candidates, references, choice, promoted=promote_it, branch=branch, reason=reason,
                          margin=margin)
    metrics["dev_source"] = outcome.get("dev_note", "")
    version = ModelVersion.objects.create(collection=run.collection, run=run, path=str(directory), metrics=metrics)
    if promote_it:
        promote(version=version)
        transaction.on_commit(lambda: send_miner_distillation(version.pk))
    last = chosen.metrics
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.DONE, metrics=metrics, promoted=promote_it, output_dir=str(out_dir),
        eta_seconds=0, finished_at=timezone.now(),
    )
    log.info("training run %s: %s (chosen %s, dev NDCG@10 %s)", run.pk, reason, chosen.name, last.get("ndcg@10"))


def run_metrics(candidates: dict, references: dict, choice, *, promoted: bool, branch: str, reason: str,
                margin: float) -> dict:
    """The run's figures for its page and API (layout: README, "Training runs")."""
    rows = []
    for name, candidate in candidates.items():
        gate = choice.decisions[name]
        rows.append({**candidate.as_json(), "interval": list(gate.candidate_interval) if gate.candidate_interval else None,
                     "gate": gate.as_json()})
    refs = {}
    for name, ref in references.items():
        interval = mean_interval(ref["per_query"], seed=choice.decision.seed)
        refs[name] = {**ref, "interval": list(interval) if interval else None}
    decision = choice.decision
    chosen = candidates[choice.chosen]
    return {
        "dev_queries": decision.dev_queries,
        "candidates": rows,
        "references": refs,
        "winner": choice.winner if promoted else None,
        "decision": {"promoted": promoted, "candidate": choice.chosen, "branch": branch, "reason": reason, "override_reason": None,
                     "margin": margin, "overridden_by": None, "overridden_at": None,
                     "min_dev_queries": decision.min_dev_queries},
        # The older layout, which earlier pages and scripts read.
        "base": candidates[ZERO_SHOT].metrics,
        "bm25": {k: v for k, v in references["bm25"].items() if k != "per_query"},
        "new": {**chosen.metrics, "candidate": chosen.name},
        **({"promoted": {k: v for k, v in references["promoted"].items() if k != "per_query"}}
           if "promoted" in references else {}),
    }


def _drop_other_candidates(out_dir: Path, *, keep: Path) -> None:
    """Only the kept candidate's directory stays (a fusion holds its own copy of its inner model)."""
    root = out_dir / "candidates"
    for directory in root.iterdir() if root.is_dir() else ():
        if directory.resolve() != keep.resolve():
            shutil.rmtree(directory, ignore_errors=True)


LOSS_CURVE_POINTS = 400


class _ProgressReporter:
    """Writes step/loss/ETA and the heartbeat to the run row (at most twice a second) and reads the
    cancel flag. Writes are conditional on this attempt: when the run was recovered as lost
    meanwhile, training stops with RunTakenOver."""

    def __init__(self, run_id: int, every: float = 0.5, *, attempt: int = 0):
        self.run_id, self.every, self.last, self.attempt = run_id, every, 0.0, attempt
        self.curve: list[list] = []

    def _update(self, **fields) -> None:
        if not TrainingRun.objects.beat(self.run_id, self.attempt, **fields):
            raise RunTakenOver(self.run_id)

    def beat(self) -> None:
        self._update()

    def progress(self, *, step, total_steps, loss, eta_seconds, epoch, stage=None):
        now = time.monotonic()
        if now - self.last < self.every and step != total_steps:
            return
        self.last = now
        if loss is not None:
            self.curve.append([stage or "", step, float(loss)])
            if len(self.curve) > LOSS_CURVE_POINTS:
                self.curve = self.curve[::2]  # thinned evenly: the shape stays, the row stays small
        self._update(step=step, total_steps=total_steps, loss=loss, eta_seconds=eta_seconds, loss_curve=self.curve)

    def should_cancel(self) -> bool:
        return TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()
