"""The export's surfaces: staff only, a streaming download (gzip on request), the job API, the admin action."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from annotate.export.services import new_snapshot, run_export_job, stream_export
from annotate.models import ExportSnapshot, Membership


@pytest.fixture
def collection(graded_collection):
    return graded_collection()


@pytest.fixture
def member(collection):
    user = get_user_model().objects.create_user("member", password="pw-123456789")
    Membership.objects.create(collection=collection, user=user)
    return user


def export_urls(collection) -> list[tuple[str, str]]:
    snapshot = ExportSnapshot.objects.create(collection=collection, format="listwise")
    return [
        ("GET", reverse("export-download", kwargs={"slug": collection.slug, "format": "listwise"})),
        ("GET", reverse("export-download", kwargs={"slug": collection.slug, "format": "qrels"}) + "?gzip=1"),
        ("POST", reverse("api-export-start", kwargs={"slug": collection.slug})),
        ("GET", reverse("api-export", kwargs={"snapshot_id": snapshot.pk})),
        ("GET", reverse("api-export-file", kwargs={"snapshot_id": snapshot.pk})),
    ]


def test_every_export_url_is_403_for_a_logged_in_non_staff_member(client, collection, member):
    client.force_login(member)
    for method, url in export_urls(collection):
        response = client.get(url) if method == "GET" else client.post(url, {}, content_type="application/json")
        assert response.status_code == 403, url
    assert ExportSnapshot.objects.count() == 1  # only the one made for the URLs


def test_anonymous_callers_are_sent_to_log_in_or_refused(client, collection):
    for method, url in export_urls(collection):
        response = client.get(url) if method == "GET" else client.post(url, {}, content_type="application/json")
        if url.startswith("/api/"):
            assert response.status_code in (401, 403), url
        else:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_the_download_streams_the_snapshot_file(client, collection, staff_user):
    client.force_login(staff_user)
    response = client.get(reverse("export-download", kwargs={"slug": "small", "format": "listwise"}) + "?split=train")
    assert response.status_code == 200 and response.streaming
    body = b"".join(response.streaming_content)
    snapshot = ExportSnapshot.objects.get(pk=int(response["X-Export-Snapshot"]))
    assert snapshot.status == "done" and snapshot.created_by == staff_user and snapshot.params["split"] == "train"
    assert body == Path(snapshot.file_path).read_bytes() and body
    assert response["Content-Disposition"] == f'attachment; filename="small-{snapshot.pk}.jsonl"'
    assert {json.loads(line)["split"] for line in body.splitlines()} == {"train"}


def test_the_download_is_gzipped_on_request(client, collection, staff_user):
    client.force_login(staff_user)
    url = reverse("export-download", kwargs={"slug": "small", "format": "qrels"})
    as_file = client.get(url + "?gzip=1")
    assert as_file["Content-Type"] == "application/gzip" and not as_file.has_header("Content-Encoding")
    assert as_file["Content-Disposition"].endswith('.qrels.gz"')
    compressed = b"".join(as_file.streaming_content)
    plain = Path(ExportSnapshot.objects.get(pk=int(as_file["X-Export-Snapshot"])).file_path).read_bytes()
    assert gzip.decompress(compressed) == plain
    encoded = client.get(url, HTTP_ACCEPT_ENCODING="br, gzip;q=0.8")
    assert encoded["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(encoded.streaming_content)) == plain
    refused = client.get(url, HTTP_ACCEPT_ENCODING="gzip;q=0")
    assert not refused.has_header("Content-Encoding") and b"".join(refused.streaming_content) == plain


def test_an_interrupted_download_fails_its_snapshot_and_leaves_no_file(graded_collection, staff_user, settings):
    collection = graded_collection("wide", queries=60, docs_per_query=30, doc_text=lambda q, d: f"doc {d} " + "text " * 60)
    snapshot = new_snapshot(collection=collection, format="listwise", params={}, created_by=staff_user)
    chunks = stream_export(snapshot)
    next(chunks)  # the client got the first bytes and went away: the server closes the response
    chunks.close()
    snapshot.refresh_from_db()
    assert snapshot.status == "failed" and "interrupted" in snapshot.error and not snapshot.sha256
    assert list((Path(settings.DATA_DIR) / "exports" / "wide").iterdir()) == []


@pytest.mark.parametrize("query, reason", [
    ("?min_weight=2", "min_weight: must be <= 1.0"),
    ("?split=holdout", "split: must be one of"),
    ("?gzip=yes", "gzip: must be 1 or 0"),
    ("?colour=red", "colour: unknown export parameter"),
])
def test_a_bad_filter_on_the_download_is_400_with_the_reason(client, collection, staff_user, query, reason):
    client.force_login(staff_user)
    response = client.get(reverse("export-download", kwargs={"slug": "small", "format": "listwise"}) + query)
    assert response.status_code == 400 and reason in response.content.decode()
    assert not ExportSnapshot.objects.exists()


def test_an_unknown_format_or_collection_on_the_download(client, collection, staff_user):
    client.force_login(staff_user)
    response = client.get(reverse("export-download", kwargs={"slug": "small", "format": "xml"}))
    assert response.status_code == 400 and "format: must be one of" in response.content.decode()
    assert client.get(reverse("export-download", kwargs={"slug": "nope", "format": "listwise"})).status_code == 404


def test_the_api_starts_a_job_reports_it_and_serves_its_file_when_done(client, collection, staff_user):
    client.force_login(staff_user)
    start = client.post(reverse("api-export-start", kwargs={"slug": "small"}),
                        {"format": "pairwise", "params": {"split": "all", "max_pairs_per_query": 3}},
                        content_type="application/json")
    assert start.status_code == 202 and start.json()["status"] == "pending"
    snapshot_id = start.json()["id"]
    file_url = reverse("api-export-file", kwargs={"snapshot_id": snapshot_id})
    assert client.get(file_url).status_code == 409
    run_export_job(snapshot_id=snapshot_id)
    assert run_export_job(snapshot_id=snapshot_id) is None  # a second delivery does nothing
    status = client.get(reverse("api-export", kwargs={"snapshot_id": snapshot_id})).json()
    assert status["status"] == "done" and status["counts"]["lines"] == 8 * 3
    served = client.get(file_url)
    body = b"".join(served.streaming_content)
    assert served.status_code == 200 and served["X-Export-Sha256"] == status["sha256"]
    assert body == Path(ExportSnapshot.objects.get(pk=snapshot_id).file_path).read_bytes()


def test_a_bad_filter_on_the_api_is_400_naming_it(client, collection, staff_user):
    client.force_login(staff_user)
    url = reverse("api-export-start", kwargs={"slug": "small"})
    response = client.post(url, {"params": {"min_judgments": "many"}}, content_type="application/json")
    assert response.status_code == 400 and "min_judgments" in response.json()["params"]
    response = client.post(url, {"format": "csv"}, content_type="application/json")
    assert response.status_code == 400 and "format" in response.json()
    assert not ExportSnapshot.objects.exists()


def test_the_admin_action_queues_a_listwise_snapshot(client, collection, staff_user):
    client.force_login(staff_user)
    response = client.post(reverse("admin:annotate_collection_changelist"),
                           {"action": "export_listwise_snapshot", "_selected_action": [collection.pk]}, follow=True)
    snapshot = ExportSnapshot.objects.get(collection=collection)
    assert (snapshot.format, snapshot.status, snapshot.created_by) == ("listwise", "pending", staff_user)
    assert response.status_code == 200 and f">#{snapshot.pk}</a> of small queued" in response.content.decode()
    assert client.get(reverse("admin:annotate_exportsnapshot_changelist")).status_code == 200
