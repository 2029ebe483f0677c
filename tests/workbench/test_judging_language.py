"""The judging API refuses in the annotator's language: the saved choice, else the browser's (#16)."""
from __future__ import annotations

import pytest

from annotate.models import AnnotatorProfile, GuidelineAcknowledgement, Judgment

from .factories import make_annotators, make_collection

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotator(db):
    collection = make_collection(queries=1, candidates=2, k=1)
    (user,) = make_annotators(collection, 1)
    GuidelineAcknowledgement.objects.create(user=user, version=collection.guideline_version)
    return user


def _ungraded_save(client, user, **headers) -> dict:
    """A grade of null without a skip: the judging service refuses it."""
    client.force_login(user)
    task = client.post("/api/collections/c1/tasks/next/", **headers).json()
    response = client.post(f"/api/tasks/{task['task']}/judgments/",
                           {"candidate": task["candidates"][0]["id"], "grade": None, "idempotency_key": "k"},
                           content_type="application/json", **headers)
    assert response.status_code == 400 and not Judgment.objects.exists()
    return response.json()


def test_an_annotator_who_chose_chinese_is_refused_in_chinese_whatever_the_browser_says(client, annotator):
    AnnotatorProfile.objects.update_or_create(user=annotator, defaults={"language": "zh-hans"})
    body = _ungraded_save(client, annotator, HTTP_ACCEPT_LANGUAGE="en")
    assert body["detail"] == "评分必须是 0..3 之间的整数，实际为 None"


def test_a_chinese_browser_without_a_saved_choice_is_refused_in_chinese(client, annotator):
    body = _ungraded_save(client, annotator, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert body["detail"] == "评分必须是 0..3 之间的整数，实际为 None"


def test_an_english_annotator_is_refused_in_english(client, annotator):
    AnnotatorProfile.objects.update_or_create(user=annotator, defaults={"language": "en"})
    body = _ungraded_save(client, annotator, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert body["detail"] == "grade must be an integer 0..3, got None"


def test_a_task_that_is_not_yours_any_more_is_refused_in_chinese(client, annotator):
    AnnotatorProfile.objects.update_or_create(user=annotator, defaults={"language": "zh-hans"})
    client.force_login(annotator)
    task = client.post("/api/collections/c1/tasks/next/").json()
    assert client.post(f"/api/tasks/{task['task']}/release/").status_code == 200
    response = client.post(f"/api/tasks/{task['task']}/finish/")
    assert response.status_code == 409 and response.json()["detail"].startswith("该任务已不再开放")
