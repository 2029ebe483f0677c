"""The judging API and pages: membership, own tasks only, blind, guideline acknowledgement first."""
from __future__ import annotations

import json

import pytest

from annotate.models import Candidate, GuidelineAcknowledgement, Judgment, Lease

from .factories import make_annotators, make_collection

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(client):
    collection = make_collection(queries=2, candidates=3, k=2)
    Candidate.objects.filter(collection=collection).update(sources={"bm25": {"rank": 1, "score": 9.5}})
    ann, other = make_annotators(collection, 2)
    for user in (ann, other):
        GuidelineAcknowledgement.objects.create(user=user, version=collection.guideline_version)
    return collection, ann, other


def next_task(client, user, slug="c1"):
    client.force_login(user)
    return client.post(f"/api/collections/{slug}/tasks/next/")


def grade(client, task, candidate, value, key):
    return client.post(f"/api/tasks/{task}/judgments/", {"candidate": candidate, "grade": value, "idempotency_key": key},
                       content_type="application/json")


def all_keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from all_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from all_keys(inner)


def test_a_task_shows_no_source_rank_score_or_other_grades(client, setup):
    collection, ann, other = setup
    first = next_task(client, other).json()
    for cand in first["candidates"]:
        assert grade(client, first["task"], cand["id"], 3, f"o{cand['id']}").status_code == 200
    task = next_task(client, ann).json()
    assert task["query"]["text"]
    keys = set(all_keys(task))
    assert not keys & {"sources", "rank", "score", "is_gold", "gold_grade", "annotator", "coverage"}
    assert all(c["grade"] is None for c in task["candidates"])  # the other annotator's 3s are not shown


def test_judging_waits_for_the_guideline_acknowledgement(client, setup):
    collection, ann, _ = setup
    GuidelineAcknowledgement.objects.filter(user=ann).delete()
    response = next_task(client, ann)
    assert response.status_code == 403
    assert "acknowledge guideline version v1" in response.json()["detail"]
    assert client.post("/api/collections/c1/guidelines/acknowledge/").status_code == 200
    assert next_task(client, ann).status_code == 200


def test_a_double_submit_over_http_stores_one_judgment(client, setup):
    _, ann, _ = setup
    task = next_task(client, ann).json()
    cid = task["candidates"][0]["id"]
    assert grade(client, task["task"], cid, 2, "same").json()["created"] is True
    assert grade(client, task["task"], cid, 2, "same").json()["created"] is False
    assert Judgment.objects.filter(candidate_id=cid, annotator=ann).count() == 1


def test_bad_grade_values_get_400_with_the_reason(client, setup):
    _, ann, _ = setup
    task = next_task(client, ann).json()
    cid = task["candidates"][0]["id"]
    response = grade(client, task["task"], cid, 7, "k")
    assert response.status_code == 400 and "grade" in response.json()["detail"]
    response = client.post(f"/api/tasks/{task['task']}/judgments/", {"candidate": cid, "skipped": True, "idempotency_key": "s"},
                           content_type="application/json")
    assert response.status_code == 400 and "reason" in response.json()["detail"]
    assert not Judgment.objects.exists()


def test_a_key_reused_with_another_grade_answers_409_naming_the_conflict(client, setup):
    _, ann, _ = setup
    task = next_task(client, ann).json()
    cid = task["candidates"][0]["id"]
    assert grade(client, task["task"], cid, 2, "same").status_code == 200
    response = grade(client, task["task"], cid, 3, "same")
    assert response.status_code == 409
    assert "already used for a different action" in response.json()["detail"] and "grade 2, now 3" in response.json()["detail"]
    assert list(Judgment.objects.filter(annotator=ann).values_list("grade", flat=True)) == [2]


@pytest.mark.parametrize("value", ["2", 2.0, True, "two"])
def test_grades_and_candidates_must_be_json_integers(client, setup, value):
    _, ann, _ = setup
    task = next_task(client, ann).json()
    cid = task["candidates"][0]["id"]
    response = grade(client, task["task"], cid, value, "k")
    assert response.status_code == 400 and response.json()["detail"].startswith("grade: A JSON integer is required")
    response = grade(client, task["task"], str(cid), 2, "k2")
    assert response.status_code == 400 and response.json()["detail"].startswith("candidate: A JSON integer")
    assert not Judgment.objects.exists()


def test_nobody_reaches_another_annotators_task(client, setup):
    _, ann, other = setup
    task = next_task(client, ann).json()
    client.force_login(other)
    assert client.get(f"/api/tasks/{task['task']}/").status_code == 404
    assert grade(client, task["task"], task["candidates"][0]["id"], 1, "x").status_code == 404
    assert client.post(f"/api/tasks/{task['task']}/finish/").status_code == 404


def test_non_members_and_anonymous_are_kept_out(client, setup, django_user_model):
    outsider = django_user_model.objects.create_user("outsider", password="pw-123456789")
    assert client.post("/api/collections/c1/tasks/next/").status_code == 403
    assert client.get("/c/c1/judge/").status_code == 302
    client.force_login(outsider)
    assert client.post("/api/collections/c1/tasks/next/").status_code == 404
    assert client.get("/c/c1/judge/").status_code == 404


def test_finishing_with_open_candidates_is_refused_then_accepted(client, setup):
    _, ann, _ = setup
    task = next_task(client, ann).json()
    response = client.post(f"/api/tasks/{task['task']}/finish/")
    assert response.status_code == 409 and "still need" in response.json()["detail"]
    for cand in task["candidates"]:
        grade(client, task["task"], cand["id"], 1, f"g{cand['id']}")
    assert client.post(f"/api/tasks/{task['task']}/finish/").json()["status"] == "done"
    assert next_task(client, ann).json()["task"] != task["task"]


def test_staff_pin_a_query_and_it_comes_first(client, setup, staff_user):
    collection, ann, _ = setup
    client.force_login(staff_user)
    target = collection.queries.order_by("-shuffle_key").first()
    response = client.post("/api/collections/c1/pins/", {"query": target.external_id, "annotator": ann.username},
                           content_type="application/json")
    assert response.status_code == 201
    assert next_task(client, ann).json()["task"] == response.json()["task"]
    assert Lease.objects.get(pk=response.json()["task"]).query_id == target.pk


def test_annotators_cannot_pin(client, setup):
    collection, ann, other = setup
    client.force_login(ann)
    response = client.post("/api/collections/c1/pins/", {"query": "q0", "annotator": other.username},
                           content_type="application/json")
    assert response.status_code == 403


def test_the_judging_page_shows_query_guideline_and_highlights(client, setup):
    collection, ann, _ = setup
    client.force_login(ann)
    response = client.get("/c/c1/judge/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "guideline" in body.lower() and "v1" in body
    data = json.loads(body.split('id="task-data" type="application/json">')[1].split("</script>")[0])
    assert data["candidates"] and "sources" not in body


def test_the_judging_page_sends_new_annotators_to_the_guideline(client, setup):
    collection, ann, _ = setup
    GuidelineAcknowledgement.objects.filter(user=ann).delete()
    client.force_login(ann)
    response = client.get("/c/c1/judge/")
    assert response.status_code == 302 and "/c/c1/guidelines/" in response["Location"]
    assert client.post("/c/c1/guidelines/acknowledge/").status_code == 302
    assert client.get("/c/c1/judge/").status_code == 200


def test_click_labels_and_the_machine_judge_never_reach_an_annotator(client, setup):
    """No anchoring (#17): a source's grade of a pair is not in the task an annotator gets, nor on
    the judging page."""
    from annotate.models import CLICK_SOURCE, MACHINE_SOURCE

    collection, ann, _other = setup
    for candidate in Candidate.objects.filter(collection=collection):
        for source in (CLICK_SOURCE, MACHINE_SOURCE):
            Judgment.objects.create(collection=collection, candidate=candidate, source=source, grade=3)
    task = next_task(client, ann).json()
    assert all(c["grade"] is None for c in task["candidates"])
    text = json.dumps(task)
    assert CLICK_SOURCE not in text and MACHINE_SOURCE not in text
    page = client.get(f"/c/{collection.slug}/judge/").content.decode()
    assert f'"{MACHINE_SOURCE}"' not in page and f'"{CLICK_SOURCE}"' not in page
