"""A training run's page and API: every candidate with its dev NDCG@10 and interval, the dev size,
the decision in words (each gate branch, and runs recorded before the candidates existed), and
staff's "Promote anyway" with a recorded reason."""
from __future__ import annotations

import random
from datetime import datetime

import pytest
from django.urls import reverse

from annotate.models import Collection, ExportSnapshot
from training import registry
from training.gate import decide_promotion
from training.models import ModelVersion, TrainingRun
from training.override import OverrideConflict, OverrideReasonError, override_promotion

pytestmark = pytest.mark.django_db


# --- rows built directly, metrics as training/services.py records them ------------------------
def per_query(n: int, level: float, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    return {f"q{i}": min(1.0, max(0.0, level + rng.uniform(-0.1, 0.1))) for i in range(n)}


def figures(per_query_ndcg: dict[str, float], interval) -> dict:
    mean = sum(per_query_ndcg.values()) / len(per_query_ndcg)
    return {"queries": len(per_query_ndcg), "ndcg@10": mean, "mrr@10": mean, "recall@10": mean, "map": mean,
            "interval": list(interval)}


def metrics_now(*, dev: int, gain: float, decision_candidate: str | None = "fusion") -> dict:
    """Metrics in the issue-15 shape, the gate's JSON from the real gate: the zero-shot base (a
    reference only), a fine-tuned bi-encoder (+gain/2) and a fusion (+gain) over the base."""
    bm25, base = per_query(dev, 0.5, 1), per_query(dev, 0.55, 2)
    tracks = [("zero-shot base", "bi-encoder", base, ""),
              ("bi-encoder", "bi-encoder", {q: min(1.0, v + gain / 2) for q, v in base.items()}, ""),
              ("fusion", "fusion", {q: min(1.0, v + gain) for q, v in base.items()}, "fused with BM25 at weight 0.35")]
    candidates, gates = [], {}
    for seconds, (name, kind, ndcg, note) in enumerate(tracks, start=1):
        gate = decide_promotion(ndcg, {"bm25": bm25, "zero-shot base": base}, margin=0.005).as_json()
        gates[name] = gate
        candidates.append({"name": name, "kind": kind, **figures(ndcg, gate["candidate_interval"]),
                           "gate": None if name == "zero-shot base" else gate, "seconds": seconds * 1.5,
                           "note": note, "per_query": ndcg})
    chosen = gates["fusion"]
    bm25_interval = decide_promotion(bm25, {"base": base}).candidate_interval
    return {
        "dev_queries": dev, "candidates": candidates, "references": {"bm25": figures(bm25, bm25_interval)},
        "winner": "fusion" if chosen["promote"] else None,
        "decision": {"promoted": chosen["promote"], "candidate": decision_candidate, "branch": chosen["branch"],
                     "reason": chosen["reason"], "override_reason": None, "margin": 0.005,
                     "overridden_by": None, "overridden_at": None},
        "base": candidates[0], "bm25": figures(bm25, bm25_interval), "new": candidates[-1],
    }


def metrics_before(*, promoted: bool) -> dict:
    """The shape runs had before issue 15: base/bm25/new and a margin decision."""
    row = {"queries": 16, "mrr@10": 0.5, "recall@10": 0.5, "map": 0.4}
    return {"base": {**row, "ndcg@10": 0.41}, "bm25": {**row, "ndcg@10": 0.52}, "new": {**row, "ndcg@10": 0.6},
            "decision": {"against": "bm25", "baseline_ndcg@10": 0.52, "new_ndcg@10": 0.6,
                         "margin": 0.01 if promoted else 0.2, "promoted": promoted}}


def finished_run(collection, metrics: dict, *, promoted: bool = False, status=TrainingRun.Status.DONE,
                 with_model: bool = True, path: str = "/nonexistent/model") -> TrainingRun:
    snapshot = ExportSnapshot.objects.create(collection=collection, format="listwise",
                                             status=ExportSnapshot.Status.DONE)
    run = TrainingRun.objects.create(collection=collection, snapshot=snapshot, base_model="tiny", status=status,
                                     metrics=metrics, promoted=promoted)
    if with_model:
        version = ModelVersion.objects.create(collection=collection, run=run, path=path, metrics=metrics)
        if promoted:
            registry.promote(version=version)
    return run


@pytest.fixture
def collection():
    return Collection.objects.create(slug="rp", name="Run page")


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def page_url(run) -> str:
    return reverse("training-run", args=[run.collection.slug, run.pk])


def override_url(run) -> str:
    return reverse("training-run-override", args=[run.collection.slug, run.pk])


def api_override_url(run) -> str:
    return reverse("api-training-run-override", args=[run.pk])


# --- the page ----------------------------------------------------------------------------------
def test_the_page_shows_each_candidate_with_its_interval_the_dev_size_and_the_reason(staff, collection):
    metrics = metrics_now(dev=12, gain=0.1)
    run = finished_run(collection, metrics)
    response = staff.get(page_url(run))
    assert response.status_code == 200
    html = response.content.decode()
    for candidate in metrics["candidates"]:
        low, high = candidate["interval"]
        assert f'data-candidate="{candidate["name"]}"' in html
        assert f"[{low:.4f}, {high:.4f}]" in html
        assert f"{candidate['ndcg@10']:.4f}" in html
    fusion_gate = metrics["candidates"][2]["gate"]
    for comparison in fusion_gate["comparisons"]:
        assert f"vs {comparison['reference']} ≥ {comparison['interval'][0]:+.4f}" in html
    assert "reference only" in html  # the zero-shot base has no gate result of its own
    assert "fused with BM25 at weight 0.35" in html
    assert 'data-field="dev-queries">12<' in html
    assert "not enough dev queries (12)" in metrics["decision"]["reason"]
    assert metrics["decision"]["reason"] in html
    bm25_low, bm25_high = metrics["references"]["bm25"]["interval"]
    assert f"[{bm25_low:.4f}, {bm25_high:.4f}]" in html
    assert "Promote anyway" in html  # finished, promoted nothing, has a model


@pytest.mark.parametrize("dev,gain,branch,promoted", [
    (12, 0.1, "not-enough-dev-queries", False), (30, 0.0, "fails", False), (30, 0.1, "passes", True),
])
def test_the_page_states_the_reason_of_each_gate_branch(staff, collection, dev, gain, branch, promoted):
    metrics = metrics_now(dev=dev, gain=gain)
    assert metrics["decision"]["branch"] == branch and metrics["decision"]["promoted"] is promoted
    run = finished_run(collection, metrics, promoted=promoted)
    html = staff.get(page_url(run)).content.decode()
    assert metrics["decision"]["reason"] in html
    assert f'class="gate-{branch}"' in html
    assert ("Promote anyway" in html) is (not promoted)
    assert ('class="winner"' in html) is promoted


def test_an_older_run_without_candidates_still_renders_its_figures_and_decision(staff, collection):
    run = finished_run(collection, metrics_before(promoted=False))
    response = staff.get(page_url(run))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-candidate="zero-shot base"' in html and 'data-candidate="fine-tuned"' in html
    assert "0.6000" in html and "0.5200" in html  # the new model and BM25
    assert "not promoted: dev NDCG@10 0.6000 against bm25 0.5200 + margin 0.2000" in html
    assert 'data-field="dev-queries">16<' in html


def test_a_run_without_metrics_yet_renders_without_a_form(staff, collection):
    run = finished_run(collection, {}, status=TrainingRun.Status.RUNNING, with_model=False)
    html = staff.get(page_url(run)).content.decode()
    assert "no decision yet: the run is running" in html and "No candidate evaluated yet" in html
    assert "Promote anyway" not in html


def test_the_runs_list_links_each_run_and_shows_its_winner_dev_size_and_reason(staff, collection):
    """#16 finding 9: the list showed no dev size, and the reason cut to 90 characters."""
    import re

    passed = finished_run(collection, metrics_now(dev=30, gain=0.1), promoted=True)
    small = finished_run(collection, metrics_now(dev=3, gain=0.1))
    older = finished_run(collection, metrics_before(promoted=True))
    html = staff.get(reverse("training-runs", args=[collection.slug])).content.decode()
    assert f'href="{page_url(passed)}"' in html and f'href="{page_url(older)}"' in html
    assert "<strong>fusion</strong>" in html
    assert "promoted: the 97.5% lower bound" in html
    assert re.findall(r'<td class="num dev-queries">(\d+)</td>', html) == ["16", "3", "30"]
    assert "not enough dev queries (3)" in html
    small.refresh_from_db()
    assert small.metrics["decision"]["reason"] in html  # whole, not cut
    assert "promoted: dev NDCG@10 0.6000 against bm25 0.5200 + margin 0.0100" in html


def test_the_pages_are_for_staff_only(client, annotator, collection):
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    anonymous = client.get(page_url(run))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert client.post(override_url(run), {"reason": "x"}).status_code == 302
    client.force_login(annotator)
    assert client.get(page_url(run)).status_code == 403
    assert client.post(override_url(run), {"reason": "because"}).status_code == 403
    run.refresh_from_db()
    assert not run.promoted and registry.promoted_version(collection=collection) is None


def test_a_run_of_another_collection_is_404(staff, collection):
    run = finished_run(Collection.objects.create(slug="other", name="Other"), metrics_now(dev=12, gain=0.1))
    assert staff.get(reverse("training-run", args=[collection.slug, run.pk])).status_code == 404


# --- "Promote anyway" on the page --------------------------------------------------------------
def test_promote_anyway_promotes_the_runs_model_and_records_reason_and_user(staff, collection):
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    response = staff.post(override_url(run), {"reason": "  first labels; the fusion is clearly right  "})
    assert response.status_code == 302 and response["Location"] == page_url(run)
    run.refresh_from_db()
    assert run.promoted
    assert registry.promoted_version(collection=collection).run_id == run.pk
    decision = run.metrics["decision"]
    assert decision["promoted"] is True and decision["branch"] == "override"
    assert decision["override_reason"] == "first labels; the fusion is clearly right"
    assert decision["overridden_by"] == "staff"
    assert datetime.fromisoformat(decision["overridden_at"]).tzinfo is not None
    assert decision["gate_branch"] == "not-enough-dev-queries"
    assert run.metrics["winner"] == "fusion"
    html = staff.get(page_url(run)).content.decode()
    assert "Promoted by staff override" in html and "first labels; the fusion is clearly right" in html
    assert "not enough dev queries (12)" in html  # the gate's own sentence stays on the page
    assert 'name="reason"' not in html  # nothing left to override


@pytest.mark.parametrize("reason", ["", "   \n "])
def test_a_blank_reason_shows_an_error_and_promotes_nothing(staff, collection, reason):
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    response = staff.post(override_url(run), {"reason": reason})
    assert response.status_code == 400
    assert "A reason is required" in response.content.decode()
    run.refresh_from_db()
    assert not run.promoted and run.metrics["decision"]["branch"] == "not-enough-dev-queries"
    assert registry.promoted_version(collection=collection) is None


def test_a_reason_over_500_characters_is_refused_on_the_page(staff, collection):
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    response = staff.post(override_url(run), {"reason": "x" * 501})
    assert response.status_code == 400 and "at most 500 characters" in response.content.decode()
    assert registry.promoted_version(collection=collection) is None


def test_overriding_a_promoted_or_unfinished_run_is_refused_on_the_page(staff, collection):
    passed = finished_run(collection, metrics_now(dev=30, gain=0.1), promoted=True)
    response = staff.post(override_url(passed), {"reason": "again"})
    assert response.status_code == 409
    assert f"training run {passed.pk} is already promoted" in response.content.decode()
    running = finished_run(collection, {}, status=TrainingRun.Status.RUNNING, with_model=False)
    response = staff.post(override_url(running), {"reason": "now"})
    assert response.status_code == 409 and "only a finished (done) run" in response.content.decode()


# --- the service -------------------------------------------------------------------------------
def test_override_replaces_the_promoted_model_and_a_second_override_is_refused(collection, staff_user):
    earlier = finished_run(collection, metrics_now(dev=30, gain=0.1), promoted=True)
    run = finished_run(collection, metrics_now(dev=12, gain=0.1, decision_candidate=None))
    overridden = override_promotion(run=run, reason="dev is small but the labels agree", user=staff_user)
    assert overridden.promoted and registry.promoted_version(collection=collection).run_id == run.pk
    assert not ModelVersion.objects.get(run=earlier).is_promoted
    # No candidate named by the decision: the best dev NDCG@10 among the gated candidates.
    assert overridden.metrics["winner"] == "fusion"
    with pytest.raises(OverrideConflict, match="already promoted by override"):
        override_promotion(run=run, reason="twice", user=staff_user)


def test_override_names_the_best_trained_candidate_not_the_reference_only_base(collection, staff_user):
    metrics = metrics_now(dev=12, gain=-0.1, decision_candidate=None)  # the untrained base is best
    run = override_promotion(run=finished_run(collection, metrics), reason="keep the fine-tuned one", user=staff_user)
    assert run.metrics["winner"] == "bi-encoder"


def test_override_refusals_are_value_errors_naming_the_problem(collection, staff_user):
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    with pytest.raises(OverrideReasonError, match="reason is required"):
        override_promotion(run=run, reason="  ", user=staff_user)
    with pytest.raises(OverrideReasonError, match="501 characters long"):
        override_promotion(run=run, reason="y" * 501, user=staff_user)
    with pytest.raises(ValueError, match="reason must be text"):
        override_promotion(run=run, reason=None, user=staff_user)
    modelless = finished_run(collection, metrics_now(dev=12, gain=0.1), with_model=False)
    with pytest.raises(OverrideConflict, match="has no trained model"):
        override_promotion(run=modelless, reason="fine", user=staff_user)
    failed = finished_run(collection, {}, status=TrainingRun.Status.FAILED, with_model=False)
    with pytest.raises(ValueError, match="is failed: only a finished"):
        override_promotion(run=failed, reason="fine", user=staff_user)
    assert registry.promoted_version(collection=collection) is None


def test_an_older_run_can_be_overridden_too(collection, staff_user):
    run = override_promotion(run=finished_run(collection, metrics_before(promoted=False)), reason="ok", user=staff_user)
    assert run.promoted and run.metrics["decision"]["branch"] == "override"
    assert run.metrics["decision"]["against"] == "bm25"  # the older figures are kept


# --- the API -----------------------------------------------------------------------------------
def test_the_run_api_exposes_candidates_references_dev_size_winner_and_decision(staff, collection):
    metrics = metrics_now(dev=30, gain=0.1)
    run = finished_run(collection, metrics, promoted=True)
    body = staff.get(reverse("api-training-run", args=[run.pk])).json()
    assert [c["name"] for c in body["candidates"]] == ["zero-shot base", "bi-encoder", "fusion"]
    assert body["candidates"][2]["interval"] == metrics["candidates"][2]["interval"]
    assert body["references"]["bm25"]["interval"] == metrics["references"]["bm25"]["interval"]
    assert body["dev_queries"] == 30 and body["winner"] == "fusion"
    assert body["decision"]["branch"] == "passes" and body["decision"]["reason"] == metrics["decision"]["reason"]
    older = finished_run(collection, metrics_before(promoted=False))
    body = staff.get(reverse("api-training-run", args=[older.pk])).json()
    assert body["candidates"] is None and body["winner"] is None and body["decision"]["against"] == "bm25"


def test_the_override_api_promotes_with_a_reason_and_answers_200_with_the_run(staff, collection):
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    response = staff.post(api_override_url(run), {"reason": "good enough"}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == run.pk and body["promoted"] is True and body["winner"] == "fusion"
    assert body["decision"]["override_reason"] == "good enough" and body["decision"]["overridden_by"] == "staff"
    assert registry.promoted_version(collection=collection).run_id == run.pk
    again = staff.post(api_override_url(run), {"reason": "again"}, content_type="application/json")
    assert again.status_code == 409 and "already promoted by override" in again.json()["detail"]


@pytest.mark.parametrize("payload", [{"reason": ""}, {"reason": "  "}, {}, {"reason": 5}])
def test_the_override_api_refuses_a_missing_or_blank_reason_with_400(staff, collection, payload):
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    response = staff.post(api_override_url(run), payload, content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("reason") and body["reason"]
    assert registry.promoted_version(collection=collection) is None


def test_the_override_api_answers_409_for_a_run_not_done_or_promoted_and_403_to_annotators(
        client, staff_user, annotator, collection):
    running = finished_run(collection, {}, status=TrainingRun.Status.RUNNING, with_model=False)
    passed = finished_run(collection, metrics_now(dev=30, gain=0.1), promoted=True)
    client.force_login(annotator)
    assert client.post(api_override_url(passed), {"reason": "x"}, content_type="application/json").status_code == 403
    client.force_login(staff_user)
    for run in (running, passed):
        response = client.post(api_override_url(run), {"reason": "x"}, content_type="application/json")
        assert response.status_code == 409 and f"training run {run.pk}" in response.json()["detail"]
    assert client.post("/api/training-runs/999999/override/", {"reason": "x"},
                       content_type="application/json").status_code == 404


def test_an_earlier_version_serves_again_with_a_recorded_reason(staff, collection, tmp_path):
    """Roll back from the runs page (#16 item 1): a reason is required; a version whose files are
    gone, or the one already serving, is refused with the reason."""
    older_dir, newer_dir = tmp_path / "older", tmp_path / "newer"
    older_dir.mkdir()
    newer_dir.mkdir()
    older = finished_run(collection, metrics_now(dev=30, gain=0.1), promoted=True, path=str(older_dir))
    newer = finished_run(collection, metrics_now(dev=30, gain=0.1), promoted=True, path=str(newer_dir))
    gone = finished_run(collection, metrics_now(dev=30, gain=0.1), path=str(tmp_path / "deleted"))
    older_version, newer_version, gone_version = (ModelVersion.objects.get(run=r) for r in (older, newer, gone))
    url = lambda v: reverse("model-version-serve", args=[collection.slug, v.pk])  # noqa: E731

    page = staff.post(url(older_version), {"reason": "  "}, follow=True).content.decode()
    assert "reason is required" in page and registry.promoted_version(collection=collection) == newer_version
    page = staff.post(url(gone_version), {"reason": "try"}, follow=True).content.decode()
    assert "its files are gone" in page
    page = staff.post(url(older_version), {"reason": "the new one ranks worse on live traffic"},
                      follow=True).content.decode()
    assert f"Model version {older_version.pk} serves again." in page
    assert registry.promoted_version(collection=collection) == older_version
    older_version.refresh_from_db()
    assert older_version.metrics["served_again"][0]["reason"] == "the new one ranks worse on live traffic"
    assert "served again by staff" in page and "the new one ranks worse on live traffic" in page
    again = staff.post(url(older_version), {"reason": "again"}, follow=True).content.decode()
    assert "already serves" in again


def test_the_run_page_draws_the_loss_per_stage(staff, collection):
    run = finished_run(collection, metrics_now(dev=30, gain=0.1))
    assert 'id="loss-chart-empty"' in staff.get(page_url(run)).content.decode()
    TrainingRun.objects.filter(pk=run.pk).update(
        loss_curve=[["bi-encoder", 1, 2.0], ["bi-encoder", 4, 1.0], ["fusion", 1, 0.5]])
    html = staff.get(page_url(run)).content.decode()
    assert html.count("<polyline") == 2 and 'data-stage="bi-encoder"' in html and 'data-stage="fusion"' in html


def test_the_loss_chart_skips_nan_and_scales_each_stage_to_its_own_steps():
    import re

    from training.charts import loss_chart

    svg = str(loss_chart([["a", 0, 1.0], ["a", 10, 0.0], ["b", 5, float("nan")], ["b", 2, 0.5], ["b", 4, 0.5]]))
    lines = {stage: points for points, stage in re.findall(r'points="([^"]+)" data-stage="(\w)"', svg)}
    assert set(lines) == {"a", "b"} and len(lines["b"].split()) == 2  # the NaN point is not drawn
    assert lines["a"].split()[-1].split(",")[0] == lines["b"].split()[-1].split(",")[0]  # both end at the right edge


def test_the_schedule_page_sets_the_policy_and_its_beat_task(staff, collection):
    from django_celery_beat.models import PeriodicTask

    from training.models import RetrainPolicy

    url = reverse("retrain-schedule", args=[collection.slug])
    assert "No retraining policy yet" in staff.get(url).content.decode()
    data = {"enabled": "on", "every_hours": 6, "min_new_judgments": 40, "promotion_margin": 0.01,
            "train_params": '{"epochs": 2}', "export_params": '{"min_judgments": 2}'}
    assert staff.post(url, data).status_code == 302
    policy = RetrainPolicy.objects.get(collection=collection)
    assert (policy.enabled, policy.min_new_judgments, policy.promotion_margin) == (True, 40, 0.01)
    assert policy.params == {"train": {"epochs": 2}, "export": {"min_judgments": 2}}
    task = PeriodicTask.objects.get(pk=policy.periodic_task_id)
    assert task.enabled and (task.interval.every, task.interval.period) == (6, "hours")
    # Switched off every 12 h; a bad training setting is refused with its name, nothing changes.
    assert staff.post(url, {**data, "enabled": "", "every_hours": 12}).status_code == 302
    task.refresh_from_db()
    assert not task.enabled and task.interval.every == 12
    bad = staff.post(url, {**data, "train_params": '{"epochs": 0}'})
    assert bad.status_code == 200 and "epochs" in bad.content.decode()
    bad = staff.post(url, {**data, "train_params": "{not json"})
    assert bad.status_code == 200 and "Enter a valid JSON" in bad.content.decode()
    policy.refresh_from_db()
    assert policy.params["train"] == {"epochs": 2} and not policy.enabled
    page = staff.get(url).content.decode()
    assert 'data-field="enabled">off<' in page and 'value="12"' in page
