"""What staff pages refuse, and the job statuses they show, in the language the user chose (#16).

English pages keep saying the status codes themselves ("pending", "done"): their scripts and tests
read them. Stored flag codes and the false-negative rule are worded when shown."""
from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse
from django.utils import translation

from annotate.agreement.annotators import FLAG_TEXT
from annotate.judging.false_negatives import false_negative_lane
from annotate.models import AnnotatorProfile, ExportSnapshot, ImportJob

pytestmark = pytest.mark.django_db


def _speaks(user, language: str):
    AnnotatorProfile.objects.update_or_create(user=user, defaults={"language": language})
    return user


@pytest.mark.parametrize("language, page, reason", [
    ("zh-hans", "quality-dashboard", "质量控制仅限管理员"),  # a view naming it in English
    ("zh-hans", "import-new", "导入仅限管理员"),  # a view naming it already translated
    ("en", "quality-dashboard", "Quality control is for staff only"),  # the 403 page capitalises
    ("en", "import-new", "Importing is for staff only"),
])
def test_an_annotator_is_told_what_is_reserved_for_staff_in_their_language(client, annotator, language, page,
                                                                           reason):
    client.force_login(_speaks(annotator, language))
    response = client.get(reverse(page, args=["web"] if page == "quality-dashboard" else []))
    assert response.status_code == 403 and reason in response.content.decode()


def _status_words(html: str) -> dict:
    return json.loads(re.search(r'<script id="job-status-words" type="application/json">(.*?)</script>', html).group(1))


@pytest.mark.parametrize("language, pending, done, bytes_of", [
    ("zh-hans", "等待中", "已完成", "（%(done)s / %(total)s）"),
    ("en", "pending", "done", "(%(done)s of %(total)s)"),
])
def test_the_import_job_page_and_its_script_name_the_status_in_the_users_language(
        client, staff_user, collection, language, pending, done, bytes_of):
    job = ImportJob.objects.create(collection=collection, created_by=staff_user, bytes_total=2048, bytes_done=1024)
    client.force_login(_speaks(staff_user, language))
    html = client.get(reverse("import-job", args=[job.pk])).content.decode()
    assert f'<strong id="job-status">{pending}</strong>' in html
    assert _status_words(html)["done"] == done  # what the script writes once the job is done
    assert f'data-bytes-of="{bytes_of}"' in html


@pytest.mark.parametrize("language, word", [("zh-hans", "失败"), ("en", "failed")])
def test_the_exports_page_names_a_snapshots_status_in_the_users_language(client, staff_user, collection,
                                                                          language, word):
    ExportSnapshot.objects.create(collection=collection, format="listwise", status=ExportSnapshot.Status.FAILED)
    client.force_login(_speaks(staff_user, language))
    html = client.get(reverse("exports", args=[collection.slug])).content.decode()
    assert f"<td>{word}</td>" in html


def test_the_admin_labels_of_a_status_are_translated_too():
    with translation.override("zh-hans"):
        assert ImportJob(status="running").get_status_display() == "运行中"
    with translation.override("en"):
        assert ImportJob(status="running").get_status_display() == "Running"


def test_stored_flag_codes_and_the_false_negative_rule_are_worded_in_the_viewers_language(collection):
    with translation.override("zh-hans"):
        assert str(FLAG_TEXT["low_gold"]) == "金标准条目准确率低"
        assert false_negative_lane(collection)["rule"] == "相关：超过半数的人工评分为 2 或更高"
    with translation.override("en"):
        assert str(FLAG_TEXT["low_gold"]) == "low accuracy on gold items"
        assert false_negative_lane(collection)["rule"].startswith("relevant: more than half")
