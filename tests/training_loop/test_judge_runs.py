"""Machine judge runs (training.judge_runs): asked for after a promotion or by staff from the training
page, one at a time per collection, run once however often the message comes, cancelled when the
model they name no longer serves, and recorded -- done, failed or cancelled -- for the page."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from annotate.models import MACHINE_SOURCE, Judgment
from config.liveness import WorkerHold
from training import registry
from training.judge_runs import (
    JudgeRunAlreadyActive,
    execute_judge_run,
    recover_lost_judge_runs,
    request_machine_judge,
    request_served_judge,
)
from training.models import MachineJudgeRun, ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def base_is_tiny(settings, tiny_model):
    settings.BASE_MODEL_DIR = tiny_model
    return tiny_model


def machine_grades(collection) -> dict[int, int]:
    return dict(Judgment.objects.filter(collection=collection, source=MACHINE_SOURCE).values_list("candidate_id", "grade"))


def version_of(collection, path: Path) -> ModelVersion:
    return ModelVersion.objects.create(collection=collection, path=str(path), metrics={})


def test_before_any_promotion_staff_judge_with_the_base_model_once(graded_collection, base_is_tiny):
    run = request_served_judge(collection=graded_collection)
    assert (run.status, run.version, run.model_path) == ("pending", None, str(base_is_tiny))

    done = execute_judge_run(run_id=run.pk)
    assert done.status == "done" and done.attempts == 1 and done.finished_at is not None
    assert done.result["added"] == 80 and done.result["calibration"] == "score"
    assert done.result["calibration_grades"] == 60 and sum(done.result["grade_counts"]) == 80
    assert len(machine_grades(graded_collection)) == 80

    assert execute_judge_run(run_id=run.pk) is None  # a duplicated message: claimed once, nothing redone
    assert MachineJudgeRun.objects.get(pk=run.pk).attempts == 1


def test_a_second_request_while_one_waits_is_refused_by_name(graded_collection, base_is_tiny):
    request_served_judge(collection=graded_collection)
    with pytest.raises(JudgeRunAlreadyActive, match=r"already queued or running \(pending, 20\d\d-"):
        request_served_judge(collection=graded_collection)
    assert MachineJudgeRun.objects.count() == 1


def test_a_run_whose_model_no_longer_serves_is_cancelled_and_grades_nothing(graded_collection, tiny_model,
                                                                           base_is_tiny):
    first, second = version_of(graded_collection, tiny_model), version_of(graded_collection, tiny_model)
    registry.promote(version=first)
    run = request_served_judge(collection=graded_collection)
    assert run.version == first
    registry.promote(version=second)  # before a worker reached it

    cancelled = execute_judge_run(run_id=run.pk)
    assert cancelled.status == "cancelled" and f"model version {second.pk} serves now" in cancelled.error
    assert machine_grades(graded_collection) == {}


def test_the_base_models_run_is_cancelled_once_a_version_serves(graded_collection, tiny_model, base_is_tiny):
    run = request_served_judge(collection=graded_collection)
    version = version_of(graded_collection, tiny_model)
    registry.promote(version=version)
    assert execute_judge_run(run_id=run.pk).status == "cancelled"
    assert machine_grades(graded_collection) == {}


def test_a_promotion_replaces_a_waiting_run(graded_collection, tiny_model, base_is_tiny):
    waiting = request_served_judge(collection=graded_collection)
    version = version_of(graded_collection, tiny_model)
    registry.promote(version=version)
    new = request_machine_judge(collection=graded_collection, version=version, replace_pending=True)
    waiting.refresh_from_db()
    assert waiting.status == "cancelled" and f"replaced by the judge of model version {version.pk}" in waiting.error
    assert execute_judge_run(run_id=new.pk).status == "done"
    assert len(machine_grades(graded_collection)) == 80


def test_a_promotion_while_a_judge_runs_gets_its_own_judge_when_that_one_ends(graded_collection, tiny_model,
                                                                             base_is_tiny, monkeypatch):
    import training.machine_judge as machine_judge

    version = version_of(graded_collection, tiny_model)
    judge = machine_judge.judge_collection

    def promoted_meanwhile(**kwargs):
        registry.promote(version=version)  # the promotion lands while the base model judges...
        with pytest.raises(JudgeRunAlreadyActive):  # ...and its own request finds this run active
            request_machine_judge(collection=graded_collection, version=version, replace_pending=True)
        return judge(**kwargs)

    monkeypatch.setattr(machine_judge, "judge_collection", promoted_meanwhile)
    run = request_served_judge(collection=graded_collection)
    assert execute_judge_run(run_id=run.pk).status == "done"
    follow_up = MachineJudgeRun.objects.exclude(pk=run.pk).get()
    assert (follow_up.status, follow_up.version) == ("pending", version)


def test_a_judge_that_fails_says_why_and_the_grades_written_before_stand(graded_collection, base_is_tiny, settings,
                                                                         tmp_path):
    execute_judge_run(run_id=request_served_judge(collection=graded_collection).pk)
    before = machine_grades(graded_collection)
    settings.BASE_MODEL_DIR = tmp_path / "no-model-here"
    failed = execute_judge_run(run_id=request_served_judge(collection=graded_collection).pk)
    assert failed.status == "failed" and "no-model-here" in failed.error and failed.finished_at is not None
    assert machine_grades(graded_collection) == before
    request_served_judge(collection=graded_collection)  # a failed run no longer blocks the next


def test_a_run_of_a_worker_that_died_is_sent_again_once_then_fails(graded_collection, base_is_tiny, redis_url):
    if connection.vendor != "postgresql":
        pytest.skip("worker liveness is a PostgreSQL advisory lock")
    run = request_served_judge(collection=graded_collection)
    MachineJudgeRun.objects.filter(pk=run.pk).update(status="running", attempts=1)  # claimed, then the worker died
    assert recover_lost_judge_runs() == {run.pk: "requeued"}
    run.refresh_from_db()
    assert run.status == "pending" and "attempt 1 stopped with its worker" in run.error

    MachineJudgeRun.objects.filter(pk=run.pk).update(status="running", attempts=2)
    held = WorkerHold("machine-judge", run.pk)
    assert held.acquire()  # a live worker: left alone
    try:
        assert recover_lost_judge_runs() == {}
    finally:
        held.release()
    assert recover_lost_judge_runs() == {run.pk: "failed"}
    run.refresh_from_db()
    assert run.status == "failed" and "each of 2 attempts" in run.error


def test_staff_ask_for_the_judge_from_the_training_page(graded_collection, base_is_tiny, client, staff_user):
    client.force_login(staff_user)
    page = client.get(f"/c/{graded_collection.slug}/training/").content.decode()
    assert 'id="machine-judge"' in page and "Judge now with the base model" in page
    assert "The machine judge has not run yet." in page

    response = client.post(f"/c/{graded_collection.slug}/training/judge/", follow=True)
    assert response.redirect_chain[-1][0].endswith(f"/c/{graded_collection.slug}/training/#machine-judge")
    run = MachineJudgeRun.objects.get()
    assert run.created_by == staff_user and run.version is None
    page = response.content.decode()
    assert "Machine judge queued with the base model." in page
    assert f'data-judge-run="{run.pk}"' in page and "disabled" in page.split('id="judge-now"')[1].split("</form>")[0]

    again = client.post(f"/c/{graded_collection.slug}/training/judge/", follow=True).content.decode()
    assert "already queued or running" in again and MachineJudgeRun.objects.count() == 1

    execute_judge_run(run_id=run.pk)
    page = client.get(f"/c/{graded_collection.slug}/training/").content.decode()
    row = page.split(f'data-judge-run="{run.pk}"')[1].split("</tr>")[0]
    assert ">done<" in row and ">score<" in row and ">80<" in row


def test_only_staff_may_ask_for_the_judge_and_only_by_post(graded_collection, client):
    someone = get_user_model().objects.create_user("annotator-only", password="pw-123456789")
    client.force_login(someone)
    assert client.post(f"/c/{graded_collection.slug}/training/judge/").status_code == 403
    assert not MachineJudgeRun.objects.exists()
    assert client.get(f"/c/{graded_collection.slug}/training/judge/").status_code in (403, 405)


def test_the_command_judges_here_with_sync_and_refuses_bad_input_by_name(graded_collection, base_is_tiny, capsys):
    call_command("machine_judge", graded_collection.slug, "--sync", "--json")
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("machine judge run") and "done with the base model" in out[0]
    last = json.loads(out[-1])
    assert (last["status"], last["version"], last["result"]["added"]) == ("done", None, 80)
    assert len(machine_grades(graded_collection)) == 80

    with pytest.raises(CommandError, match="collection 'nope' does not exist"):
        call_command("machine_judge", "nope")
    request_served_judge(collection=graded_collection, enqueue=False)
    with pytest.raises(CommandError, match="already queued or running"):
        call_command("machine_judge", graded_collection.slug, "--sync")


def test_the_admin_lists_the_runs_and_asks_again_with_the_served_model(graded_collection, base_is_tiny, admin_client):
    done = request_served_judge(collection=graded_collection)
    execute_judge_run(run_id=done.pk)
    listing = admin_client.get("/admin/training/machinejudgerun/")
    assert listing.status_code == 200 and f"machine judge run {done.pk}" in listing.content.decode()
    assert admin_client.get("/admin/training/machinejudgerun/add/").status_code == 403  # asked for, never typed in

    admin_client.post("/admin/training/machinejudgerun/", {"action": "judge_again", "_selected_action": [done.pk]})
    again = MachineJudgeRun.objects.exclude(pk=done.pk).get()
    assert again.status == "pending" and again.version is None
    response = admin_client.post("/admin/training/machinejudgerun/",
                                 {"action": "judge_again", "_selected_action": [done.pk]}, follow=True)
    assert "already queued or running" in response.content.decode() and MachineJudgeRun.objects.count() == 2
