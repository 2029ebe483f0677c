"""Training runs from export snapshots: train, evaluate against base/BM25/promoted, promote by margin;
failures and cancellations leave the promoted model alone; retraining only when due."""
from __future__ import annotations

from pathlib import Path

import pytest

from annotate.models import Collection
from training import registry
from training.config import TrainingParamsError
from training.models import ModelVersion, RetrainPolicy, TrainingRun
from training.retraining import retrain_collection, sync_schedule
from training.services import (
    RunAlreadyActive,
    TrainingDataError,
    execute_training_run,
    request_cancel,
    start_training_run,
)

from .conftest import FAST_RUN_PARAMS, make_snapshot, snapshot_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def collection():
    return Collection.objects.create(slug="rr", name="rr")


def run_on(collection, tmp_path, tiny_model, *, name="s.jsonl", dev=True, **params):
    snapshot = make_snapshot(collection, snapshot_file(tmp_path / name, dev=dev))
    run = start_training_run(snapshot=snapshot, base_model=str(tiny_model), params={**FAST_RUN_PARAMS, **params})
    return execute_training_run(run_id=run.pk)


def test_a_run_scores_its_candidates_on_dev_and_promotes_one_the_gate_passes(collection, tmp_path, tiny_model):
    run = run_on(collection, tmp_path, tiny_model, promotion_margin=0.01)
    assert run.status == TrainingRun.Status.DONE, run.error
    assert run.step == run.total_steps == 48 and run.loss is not None
    metrics = run.metrics
    assert "promoted" not in metrics and "promoted" not in metrics["references"]  # nothing promoted before
    assert [c["name"] for c in metrics["candidates"]] == ["zero-shot", "cross-encoder"]
    assert metrics["dev_queries"] == 16
    cross = metrics["candidates"][1]
    assert cross["kind"] == "cross-encoder" and cross["interval"][0] <= cross["ndcg@10"] <= cross["interval"][1]
    assert set(cross["per_query"]) <= {f"s2q{i}" for i in range(16)}
    assert {c["reference"] for c in cross["gate"]["comparisons"]} == {"bm25", "zero-shot base"}
    assert metrics["new"]["ndcg@10"] > metrics["bm25"]["ndcg@10"] + 0.01
    low, high = metrics["references"]["bm25"]["interval"]
    assert low <= metrics["references"]["bm25"]["ndcg@10"] <= high and low < high
    assert run.promoted and metrics["winner"] == "cross-encoder"
    assert metrics["decision"]["branch"] == "passes" and metrics["decision"]["reason"].startswith("promoted")
    version = registry.promoted_version(collection=collection)
    assert version.run_id == run.pk and version.path.endswith("candidates/cross-encoder")
    assert (registry.promoted_model_dir(collection=collection) / "config.json").is_file()
    kept = sorted(p.name for p in (Path(run.output_dir) / "candidates").iterdir())
    assert kept == ["cross-encoder"]  # only the kept candidate's directory stays
    # The loss as the run went (the run page's chart): per stage (the distillation warm start, then
    # the fine-tuning), steps rising to the end.
    stages = {stage for stage, _, _ in run.loss_curve}
    steps = [step for stage, step, _ in run.loss_curve if stage == "cross-encoder"]
    assert stages == {"cross-encoder (distil)", "cross-encoder"} and steps == sorted(steps) and steps[-1] == 48
    assert all(isinstance(loss, float) for _, _, loss in run.loss_curve)


def test_too_few_dev_queries_promote_nothing_and_say_so(collection, tmp_path, tiny_model):
    run = run_on(collection, tmp_path, tiny_model, min_dev_queries=20)
    assert run.status == TrainingRun.Status.DONE and not run.promoted
    assert run.metrics["decision"]["branch"] == "not-enough-dev-queries"
    assert "not enough dev queries (16)" in run.metrics["decision"]["reason"]
    assert run.metrics["winner"] is None and registry.promoted_version(collection=collection) is None
    assert ModelVersion.objects.get(run=run).path.endswith(run.metrics["decision"]["candidate"])


def test_a_new_model_must_beat_the_promoted_one_by_the_margin(collection, tmp_path, tiny_model):
    first = run_on(collection, tmp_path, tiny_model, promotion_margin=0.0)
    second = run_on(collection, tmp_path, tiny_model, name="s2.jsonl", promotion_margin=0.5)
    assert second.status == TrainingRun.Status.DONE
    assert second.metrics["promoted"]["version"] == first.model_version.pk
    assert second.metrics["decision"]["promoted"] is False and second.metrics["decision"]["branch"] == "fails"
    gated = next(c for c in second.metrics["candidates"] if c["name"] == "cross-encoder")["gate"]
    assert {c["reference"] for c in gated["comparisons"]} == {"bm25", "promoted", "zero-shot base"}
    assert not second.promoted
    assert registry.promoted_version(collection=collection).run_id == first.pk
    assert ModelVersion.objects.filter(collection=collection).count() == 2


def test_a_failed_run_keeps_the_promoted_model(collection, tmp_path, tiny_model):
    first = run_on(collection, tmp_path, tiny_model, promotion_margin=0.0)
    snapshot = make_snapshot(collection, snapshot_file(tmp_path / "gone.jsonl"))
    run = start_training_run(snapshot=snapshot, base_model=str(tiny_model), params=FAST_RUN_PARAMS)
    (tmp_path / "gone.jsonl").unlink()  # the snapshot's file is lost before the worker reads it
    failed = execute_training_run(run_id=run.pk)
    assert failed.status == TrainingRun.Status.FAILED
    assert "gone.jsonl: no such file" in failed.error
    assert registry.promoted_version(collection=collection).run_id == first.pk
    assert not hasattr(failed, "model_version") or failed.model_version is None


def test_a_snapshot_without_dev_queries_holds_some_train_queries_out(collection, tmp_path, tiny_model):
    run = run_on(collection, tmp_path, tiny_model, name="nodev.jsonl", dev=False)
    assert run.status == TrainingRun.Status.DONE, run.error
    assert run.metrics["dev_source"] == "10 of the snapshot's 48 train queries held out (no dev split)"
    assert run.metrics["dev_queries"] <= 10


def test_running_a_run_twice_does_nothing_the_second_time(collection, tmp_path, tiny_model):
    run = run_on(collection, tmp_path, tiny_model)
    assert execute_training_run(run_id=run.pk) is None
    assert ModelVersion.objects.filter(run=run).count() == 1


def test_one_active_run_per_collection_and_a_pending_run_cancels_at_once(collection, tmp_path, tiny_model):
    snapshot = make_snapshot(collection, snapshot_file(tmp_path / "s.jsonl"))
    run = start_training_run(snapshot=snapshot, base_model=str(tiny_model))
    with pytest.raises(RunAlreadyActive):
        start_training_run(snapshot=snapshot)
    assert request_cancel(run=run).status == TrainingRun.Status.CANCELLED
    assert execute_training_run(run_id=run.pk) is None  # a late task message finds nothing to do
    assert start_training_run(snapshot=snapshot).status == TrainingRun.Status.PENDING


def test_a_snapshot_that_is_not_a_finished_listwise_export_is_refused(collection, tmp_path):
    snapshot = make_snapshot(collection, snapshot_file(tmp_path / "s.jsonl"))
    snapshot.format = "pairwise"
    with pytest.raises(TrainingDataError, match="needs a listwise export"):
        start_training_run(snapshot=snapshot)


@pytest.mark.parametrize("params, words", [
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"epochs": "two"}, "epochs must be a positive integer"),
    ({"learning_rate": "fast"}, "params:"),
    ({"add_cjk_vocab": "yes"}, "add_cjk_vocab must be true or false"),
    ({"chunk_cost": -1}, "chunk_cost must be a non-negative integer"),
    ({"device": "gpu0"}, "device must be cpu, cuda or cuda:N"),
    ({"checkpoint_every": -5}, "checkpoint_every must be a non-negative integer"),
    ({"seed": "lucky"}, "seed must be an integer"),
    ({"weight_decay": "high"}, "weight_decay must be a number"),
    ({"weight_decay": -0.1}, "weight_decay must be >= 0"),
    ({"max_grad_norm": 0}, "max_grad_norm must be > 0"),
    ({"positive_threshold": 4}, "positive_threshold must be a grade in"),
    ({"learning_rate": float("nan")}, "learning_rate must be a number"),
    ({"loss_config": [1]}, "loss_config must be an object"),
    ({"learning-rate": 1e-4}, "unknown 'learning-rate'; known: add_cjk_vocab, batch_size"),
    ({"chunk_cost": 1.5}, "chunk_cost must be a non-negative integer"),
    ({"loss": "hinge-ish"}, "params:"),
    ({"promotion_margin": "high"}, "params:"),
])
def test_bad_training_params_are_refused_when_the_run_is_started(collection, tmp_path, params, words):
    snapshot = make_snapshot(collection, snapshot_file(tmp_path / "s.jsonl"))
    with pytest.raises(TrainingParamsError, match=words):
        start_training_run(snapshot=snapshot, params=params)
    assert not TrainingRun.objects.exists()  # nothing queued to fail later


def test_retraining_waits_for_enough_new_judgments_and_needs_the_export(collection, tmp_path):
    from django.contrib.auth import get_user_model

    from annotate.models import Candidate, Document, Judgment, Query

    policy = RetrainPolicy.objects.create(collection=collection, min_new_judgments=2)
    assert retrain_collection(collection_id=collection.pk) is None  # 0 new judgments
    user = get_user_model().objects.create_user("judge", password="pw-123456789")
    query = Query.objects.create(collection=collection, external_id="q", text="q", content_hash="h")
    for i in range(2):
        document = Document.objects.create(collection=collection, external_id=f"d{i}", text="t", content_hash=str(i))
        candidate = Candidate.objects.create(collection=collection, query=query, document=document)
        Judgment.objects.create(collection=collection, candidate=candidate, annotator=user, grade=i)
    policy.enabled = False
    policy.save()
    assert retrain_collection(collection_id=collection.pk) is None


@pytest.mark.parametrize("params, words", [
    ({"train": {"epochs": 0}}, "train params: epochs must be a positive integer"),
    ({"train": {"lr": 0.1}}, "unknown 'lr'"),
    ({"train": "fast"}, "'train' must be a JSON object"),
    ({"trian": {}}, "unknown key\\(s\\) 'trian'"),
    (["train"], "must be a JSON object"),
])
def test_a_policy_with_bad_training_params_is_refused_when_saved_in_the_admin(collection, params, words):
    from django.core.exceptions import ValidationError

    policy = RetrainPolicy(collection=collection, params=params)
    with pytest.raises(ValidationError, match=words):
        policy.full_clean()
    RetrainPolicy(collection=collection, params={"train": {"epochs": 2, "add_cjk_vocab": True}}).full_clean()


def test_a_policy_gets_a_beat_schedule_that_follows_its_switch(collection):
    policy = RetrainPolicy.objects.create(collection=collection)
    task = sync_schedule(policy=policy)
    assert task.task == "training.tasks.retrain_collection" and task.args == f"[{collection.pk}]" and task.enabled
    policy.enabled = False
    assert sync_schedule(policy=policy).pk == task.pk
    task.refresh_from_db()
    assert not task.enabled
