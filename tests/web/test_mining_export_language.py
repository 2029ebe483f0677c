"""Mining and export refusals in the staff user's language (#16): the forms follow the request, and
what a job stores for its page is written by a worker, with no request, in the starter's saved language."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from annotate.models import AnnotatorProfile, Collection, Document, ExportSnapshot
from mining import services as mining
from mining import tasks
from mining.models import MiningJob

pytestmark = pytest.mark.django_db
LONG_VERSION = "v" * 40  # the form takes 64 characters, the export parameter at most 32


def _speaks(client, user, language: str):
    client.force_login(user)
    client.post("/accounts/language/", {"language": language, "next": "/"})
    return client


@pytest.mark.parametrize("language, refusal", [
    ("zh-hans", "depth 必须在 1 到 10000 之间，当前为 0"),
    ("en", "depth must be between 1 and 10000, got 0"),
])
def test_a_bad_mining_default_is_refused_in_the_users_language(client, staff_user, collection, language, refusal):
    _speaks(client, staff_user, language)
    response = client.post(reverse("mining-settings", args=["web"]), {"settings": '{"depth": 0}'})
    assert response.status_code == 200 and refusal in response.content.decode()


@pytest.mark.parametrize("language, refusal", [
    ("zh-hans", "集合 empty 没有可挖掘的查询"),
    ("en", "collection empty has no queries to mine"),
])
def test_starting_mining_on_an_empty_collection_is_refused_in_the_users_language(client, staff_user, language,
                                                                                 refusal):
    Collection.objects.create(slug="empty", name="Empty")
    _speaks(client, staff_user, language)
    response = client.post(reverse("mining-jobs"), {"collection": "empty", "method": "bm25", "depth": 10,
                                                    "negatives": 2})
    assert response.status_code == 200 and refusal in response.content.decode()
    assert not MiningJob.objects.exists()


@pytest.mark.parametrize("language, refusal, api_refusal", [
    ("zh-hans", "必须是不超过 32 个字符的字符串", "min_weight: 必须 <= 1.0，当前为 2"),
    ("en", "must be a string of at most 32 characters", "min_weight: must be <= 1.0, got 2"),
])
def test_a_bad_export_parameter_is_refused_in_the_users_language(client, staff_user, collection, language, refusal,
                                                                 api_refusal):
    _speaks(client, staff_user, language)
    response = client.post(reverse("exports", args=["web"]), {"format": "listwise", "split": "all", "min_judgments": 0,
                                                              "min_weight": 0, "guideline_version": LONG_VERSION})
    assert response.status_code == 200 and refusal in response.content.decode()
    api = client.post(reverse("api-export-start", args=["web"]), {"format": "listwise", "params": {"min_weight": 2}},
                      content_type="application/json")
    assert api.status_code == 400 and api.json()["detail"] == api_refusal
    assert not ExportSnapshot.objects.exists()


@pytest.mark.parametrize("language, error", [
    ("zh-hans", "ValueError: 集合 web 没有可建索引的文档"),
    ("en", "ValueError: collection web has no documents to index"),
])
def test_a_failed_mining_job_stores_its_error_in_the_starters_language(staff_user, collection, language, error):
    AnnotatorProfile.objects.update_or_create(user=staff_user, defaults={"language": language})
    job = mining.start_mining(collection=collection, method="bm25", created_by=staff_user, enqueue=False)
    Document.objects.filter(collection=collection).delete()  # gone before the worker builds the index
    with pytest.raises(ValueError):
        tasks.start_job(job.pk)  # the task's body, as a worker runs it
    job.refresh_from_db()
    assert job.status == "failed" and job.error == error
    assert translation.get_language() == "en"  # the worker's own language is left as it was


def test_a_chinese_speakers_bad_new_username_is_refused_under_username(client, staff_user, collection):
    _speaks(client, staff_user, "zh-hans")
    page = client.post(reverse("members", args=["web"]), {"username": "no spaces allowed", "role": "annotator",
                                                          "password": "a-long-enough-pass-123"}).content.decode()
    username_field = page.split('id="id_username"', 1)[1].split("</p>", 1)[0]
    assert "请输入合法的用户名" in username_field  # Django's own (translated) message, under its field
    assert 'aria-describedby="id_password_error"' not in page
