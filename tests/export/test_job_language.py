"""An export job's failure, written by a worker with no request, in the language of the staff user who
started it (#16)."""
from __future__ import annotations

import pytest

from annotate.export import services as exports
from annotate.models import AnnotatorProfile, Query

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language, error", [
    ("zh-hans", "查询 ID 'q 004' 为空或含有空白字符；TREC qrels 无法容纳它"),
    ("en", "query id 'q 004' is empty or contains whitespace; TREC qrels cannot hold it"),
])
def test_a_failed_export_job_stores_its_error_in_the_starters_language(staff_user, graded_collection, language,
                                                                       error):
    AnnotatorProfile.objects.update_or_create(user=staff_user, defaults={"language": language})
    collection = graded_collection()
    Query.objects.filter(collection=collection, external_id="q004").update(external_id="q 004")
    snapshot = exports.start_export_job(collection=collection, format="qrels", created_by=staff_user)
    exports.run_export_job(snapshot_id=snapshot.pk)  # the task's body, as a worker runs it
    snapshot.refresh_from_db()
    assert snapshot.status == "failed" and snapshot.error == error
