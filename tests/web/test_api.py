"""The collections and import API: the same rules as the pages, readable 400s, 202 with the job."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotate.models import Collection, ImportJob, Judgment

from .conftest import small_upload, upload


@pytest.fixture
def job(collection, staff_user):
    return ImportJob.objects.create(collection=collection, created_by=staff_user)


def start(client, slug="web", **files):
    return client.post(reverse("api-collection-imports", args=[slug]), files)  # multipart


# --- collections ----------------------------------------------------------------------------
def test_collections_list_only_what_the_caller_may_see(as_annotator, collection):
    Collection.objects.create(slug="secret", name="Secret")
    response = as_annotator.get(reverse("api-collections"))
    assert response.status_code == 200
    assert [c["slug"] for c in response.json()["results"]] == ["web"]


def test_staff_see_every_collection(as_staff, collection):
    Collection.objects.create(slug="secret", name="Secret")
    slugs = [c["slug"] for c in as_staff.get(reverse("api-collections")).json()["results"]]
    assert slugs == ["secret", "web"]


def test_a_collection_comes_with_its_totals(as_annotator, collection):
    candidate = collection.candidates.first()
    Judgment.objects.create(collection=collection, candidate=candidate, source="qrels:q.tsv", grade=1)
    body = as_annotator.get(reverse("api-collection", args=["web"])).json()
    assert body["slug"] == "web"
    assert body["totals"] == {"documents": 6, "queries": 2, "candidates": 6, "judgments": 1}


def test_a_collection_one_is_not_a_member_of_is_hidden(as_annotator, collection):
    Collection.objects.create(slug="secret", name="Secret")
    assert as_annotator.get(reverse("api-collection", args=["secret"])).status_code == 404


def test_anonymous_callers_get_403_everywhere(client, job):
    assert client.get(reverse("api-collections")).status_code == 403
    assert client.get(reverse("api-collection", args=["web"])).status_code == 403
    assert start(client, **small_upload()).status_code == 403
    assert client.get(reverse("api-import-job", args=[job.pk])).status_code == 403


# --- imports --------------------------------------------------------------------------------
def test_annotators_may_neither_start_nor_read_imports(as_annotator, job):
    assert start(as_annotator, **small_upload()).status_code == 403
    assert as_annotator.get(reverse("api-import-job", args=[job.pk])).status_code == 403
    assert ImportJob.objects.count() == 1


def test_staff_start_an_import_and_get_202_with_the_job(as_staff, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = start(as_staff, slug="brand-new", **small_upload(),
                         labels=[upload("a.jsonl", b'{"query":"x","doc":"y","label":2}\n')])
    assert response.status_code == 202, response.content
    body = response.json()
    job = ImportJob.objects.get()
    assert body["id"] == job.pk and body["status"] == "pending" and body["collection"] == "brand-new"
    assert body["files"] == {"corpus": ["corpus.jsonl"], "queries": ["queries.jsonl"], "qrels": ["qrels.tsv"],
                             "labels": ["a.jsonl"]}
    assert body["url"] == reverse("api-import-job", args=[job.pk])
    assert len(callbacks) == 1


def test_staff_read_a_job(as_staff, job):
    body = as_staff.get(reverse("api-import-job", args=[job.pk])).json()
    assert body["status"] == "pending" and body["progress"] == 0.0 and body["error"] == ""


@pytest.mark.parametrize("slug,files,field,expected", [
    ("web", {}, "non_field_errors", "choose at least one file"),
    ("Bad_Slug", {"corpus": ("c.jsonl", b"{}\n")}, "collection", "invalid collection name"),
    ("web", {"qrels": ("qrels.tsv", b"")}, "qrels", "qrels.tsv: empty file"),
    ("web", {"run": ("run.trec", b"q0 Q0 d0 1 1.0 t\n"), "queries": ("run.trec", b"{}\n")}, "run", "two uploads"),
    ("web", {"corpus": ("c.jsonl", b"x" * 200)}, "non_field_errors", "over the upload limit"),
])
def test_bad_input_is_a_400_that_says_what_is_wrong(as_staff, settings, slug, files, field, expected):
    settings.IMPORT_UPLOAD_MAX_BYTES = 100
    response = start(as_staff, slug=slug, **{name: upload(*spec) for name, spec in files.items()})
    assert response.status_code == 400
    assert any(expected in message for message in response.json()[field]), response.json()
    assert not ImportJob.objects.exists()


def test_a_text_field_instead_of_a_file_is_a_400(as_staff):
    response = as_staff.post(reverse("api-collection-imports", args=["web"]), {"corpus": "not a file"})
    assert response.status_code == 400 and "corpus" in response.json()
