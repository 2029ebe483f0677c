"""An import's refusals in the language of the person who started it: the form's errors follow the
request, the job's `file:line: reason` is written by a worker with no request, in the starter's
saved language (#16)."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from annotate.importing import execute_import, start_import
from annotate.models import AnnotatorProfile

from .conftest import qrels_tsv, small_upload, upload

pytestmark = pytest.mark.django_db
BAD_GRADE = qrels_tsv([("q0", "d0", 1), ("q1", "d1", 7)])  # line 3: a grade outside 0..3


def _speaks(user, language: str):
    AnnotatorProfile.objects.update_or_create(user=user, defaults={"language": language})
    return user


def _failed_import_page(client, user) -> str:
    execute_import(job_id=start_import(collection_slug="lang", files=small_upload(), created_by=user).pk)
    job = start_import(collection_slug="lang", files={"qrels": upload("bad-qrels.tsv", BAD_GRADE)}, created_by=user)
    language = translation.get_language()
    assert execute_import(job_id=job.pk).status == "failed"
    assert translation.get_language() == language  # the worker's own language is left as it was
    client.force_login(user)
    return client.get(reverse("import-job", args=[job.pk])).content.decode()


def test_a_chinese_speakers_bad_file_fails_with_the_chinese_reason_at_its_line(client, staff_user):
    page = _failed_import_page(client, _speaks(staff_user, "zh-hans"))
    assert "bad-qrels.tsv:3: grade 7 超出 0..3 的范围" in page


def test_an_english_speakers_bad_file_fails_with_the_english_reason(client, staff_user):
    page = _failed_import_page(client, _speaks(staff_user, "en"))
    assert "bad-qrels.tsv:3: grade 7 is outside 0..3" in page


def test_a_user_with_no_saved_language_gets_the_sites_default(staff_user):
    job = start_import(collection_slug="lang", files={"qrels": upload("q.tsv", BAD_GRADE)}, created_by=staff_user)
    assert execute_import(job_id=job.pk).error == "q.tsv:2: unknown query id 'q0'"


@pytest.mark.parametrize("language, expected", [
    ("zh-hans", "empty.jsonl：空文件"),
    ("en", "empty.jsonl: empty file"),
])
def test_the_upload_forms_refusal_speaks_the_users_language(client, staff_user, language, expected):
    client.force_login(_speaks(staff_user, language))
    response = client.post(reverse("import-new"), {"collection": "lang", "corpus": upload("empty.jsonl", b"")})
    assert response.status_code == 200 and expected in response.content.decode()
