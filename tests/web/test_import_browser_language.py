"""In real Chromium: the import job page's script writes the status and the sizes in the words the
page gave it, so a Chinese-speaking staff member follows the job in Chinese to its end (#16)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotate.importing import execute_import, start_import
from annotate.models import AnnotatorProfile

from ..browser.conftest import login
from .conftest import small_upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_chinese_speaker_follows_the_import_in_chinese(page, staff_user, redis_url):
    AnnotatorProfile.objects.update_or_create(user=staff_user, defaults={"language": "zh-hans"})
    job = start_import(collection_slug="browser-zh", files=small_upload(), created_by=staff_user)
    login(page, "staff", "staff-pass-123")
    page.goto(reverse("import-job", args=[job.pk]))
    assert page.text_content("#job-status") == "等待中"

    execute_import(job_id=job.pk)
    page.wait_for_function("document.getElementById('job-status').textContent === '已完成'")
    sizes = page.text_content("#job-bytes")
    assert sizes.startswith("（") and " / " in sizes and "of" not in sizes
