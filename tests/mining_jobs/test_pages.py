"""Mining progress for staff: the page, its JSON, the API (start, progress, cancel); nobody else gets in."""
import pytest
from django.urls import reverse

from mining import services
from mining.models import MiningJob


@pytest.fixture
def job(tiny_collection, staff_user):
    return services.start_mining(collection=tiny_collection, method="bm25", created_by=staff_user, enqueue=False)


@pytest.mark.django_db
def test_staff_follow_a_job_on_the_page_and_its_json(client, staff_user, job):
    client.force_login(staff_user)
    services.run_job_inline(job)
    page = client.get(reverse("mining-job", args=[job.pk]))
    assert page.status_code == 200
    assert b'data-field="queries_done">12<' in page.content and b'data-field="status">done<' in page.content
    assert client.get(reverse("mining-jobs")).status_code == 200
    progress = client.get(reverse("mining-job-progress", args=[job.pk])).json()
    assert progress["status"] == "done" and progress["queries_done"] == progress["queries_total"] == 12
    assert progress["chunks_done"] == progress["chunks_total"] and progress["eta_seconds"] is None


@pytest.mark.django_db
def test_the_api_starts_reports_and_cancels(client, staff_user, tiny_collection, django_capture_on_commit_callbacks):
    client.force_login(staff_user)
    with django_capture_on_commit_callbacks(execute=False):
        created = client.post(reverse("api-mining-jobs"), {"collection": "tiny", "method": "bm25", "negatives": 2},
                              content_type="application/json")
    assert created.status_code == 201 and created.json()["status"] == "pending"
    job_id = created.json()["id"]
    assert client.get(reverse("api-mining-job", args=[job_id])).json()["params"]["negatives"] == 2
    cancelled = client.post(reverse("api-mining-job-cancel", args=[job_id])).json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_requested"]
    bad = client.post(reverse("api-mining-jobs"), {"collection": "tiny", "method": "grep"}, content_type="application/json")
    assert bad.status_code == 400 and "method must be one of" in bad.json()["detail"]


@pytest.mark.django_db
def test_a_cancelled_job_mines_no_further_chunk(job):
    services.cancel_mining(job=job)
    services.run_job_inline(job)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.queries_done == 0 and job.candidates_added == 0


@pytest.mark.django_db
def test_annotators_and_anonymous_users_get_nothing(client, annotator, job):
    assert client.get(reverse("mining-job-progress", args=[job.pk])).status_code == 302
    assert client.get(reverse("api-mining-job", args=[job.pk])).status_code in (401, 403)
    client.force_login(annotator)
    assert client.get(reverse("mining-job", args=[job.pk])).status_code == 403
    assert client.get(reverse("api-mining-job", args=[job.pk])).status_code == 403
    assert client.post(reverse("api-mining-jobs"), {"collection": "tiny", "method": "bm25"}).status_code == 403
    assert MiningJob.objects.count() == 1
