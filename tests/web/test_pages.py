"""The home page and the staff import pages: who reaches them, what the form refuses, what it starts."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from annotate.models import Collection, ImportJob

from .conftest import small_upload, upload


def post_import(client, collection="web", **files):
    return client.post(reverse("import-new"), {"collection": collection, **files})


@pytest.fixture
def job(collection, staff_user):
    return ImportJob.objects.create(collection=collection, created_by=staff_user, bytes_total=10)


# --- who reaches what -----------------------------------------------------------------------
@pytest.mark.parametrize("name,kwargs", [("import-new", {}), ("import-job", "job")])
def test_import_pages_send_anonymous_to_login(client, job, name, kwargs):
    response = client.get(reverse(name, kwargs={"job_id": job.pk} if kwargs else {}))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name,kwargs", [("import-new", {}), ("import-job", "job")])
def test_import_pages_are_forbidden_to_annotators(as_annotator, job, name, kwargs):
    assert as_annotator.get(reverse(name, kwargs={"job_id": job.pk} if kwargs else {})).status_code == 403


def test_an_annotator_cannot_start_an_import(as_annotator, collection):
    response = post_import(as_annotator, **small_upload())
    assert response.status_code == 403
    assert not ImportJob.objects.exists()


def test_staff_reach_the_import_pages(as_staff, job):
    assert as_staff.get(reverse("import-new")).status_code == 200
    page = as_staff.get(reverse("import-job", args=[job.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-status-url="{reverse("api-import-job", args=[job.pk])}"' in html
    assert "js/import_job.js" in html


def test_a_missing_job_is_404_for_staff(as_staff):
    assert as_staff.get(reverse("import-job", args=[999999])).status_code == 404


# --- the home page --------------------------------------------------------------------------
def test_home_lists_the_members_collections_with_totals_and_no_import_link(as_annotator, collection):
    Collection.objects.create(slug="secret", name="Secret")
    html = as_annotator.get(reverse("home")).content.decode()
    rows = as_annotator.get(reverse("home")).context["rows"]
    assert [row["collection"].slug for row in rows] == ["web"]
    assert rows[0]["totals"] == {"documents": 6, "queries": 2, "candidates": 6, "judgments": 0}
    assert "secret" not in html
    assert reverse("import-new") not in html


def test_an_annotators_home_shows_their_own_grades_not_reference_labels(as_annotator, collection, member):
    """#16: the annotator's home counted every judgment of the collection, imported reference
    labels included, as if it were their work."""
    import re

    from annotate.models import Candidate, Judgment

    first, second, third = Candidate.objects.filter(collection=collection).order_by("pk")[:3]
    for candidate in (first, second, third):
        Judgment.objects.create(collection=collection, candidate=candidate, source="qrels:qrels.tsv", grade=2)
    Judgment.objects.create(collection=collection, candidate=first, annotator=member, grade=3)
    html = as_annotator.get(reverse("home")).content.decode()
    assert re.search(r'data-field="own-grades">1<', html) and re.search(r'data-field="own-today">1<', html)
    assert ">4<" not in html  # the collection's total (3 reference labels + 1) is for staff


def test_home_offers_staff_the_import(as_staff, collection):
    response = as_staff.get(reverse("home"))
    assert "Import data" in response.content.decode()
    assert reverse("import-new") in response.content.decode()


# --- the form -------------------------------------------------------------------------------
def test_the_form_needs_at_least_one_file(as_staff):
    response = post_import(as_staff)
    assert response.status_code == 200
    assert "choose at least one file" in " ".join(response.context["form"].non_field_errors())
    assert not ImportJob.objects.exists()


def test_the_form_refuses_a_bad_collection_name(as_staff):
    response = post_import(as_staff, collection="Not A Slug!", **small_upload())
    assert "invalid collection name" in " ".join(response.context["form"].errors["collection"])
    assert not Collection.objects.filter(slug__iexact="not a slug!").exists()
    assert not ImportJob.objects.exists()


def test_the_form_names_an_empty_file(as_staff):
    response = post_import(as_staff, corpus=upload("corpus.jsonl", b"x"), qrels=upload("my-qrels.tsv", b""))
    assert response.context["form"].errors["qrels"] == ["my-qrels.tsv: empty file"]
    assert not ImportJob.objects.exists()


def test_the_form_refuses_uploads_over_the_limit(as_staff, settings):
    settings.IMPORT_UPLOAD_MAX_BYTES = 100
    response = post_import(as_staff, **small_upload())
    errors = " ".join(response.context["form"].non_field_errors())
    assert "over the upload limit" in errors
    assert not ImportJob.objects.exists()


def test_the_form_refuses_two_files_with_the_same_name(as_staff):
    response = post_import(as_staff, corpus=upload("data.jsonl", b"{}\n"), queries=upload("data.jsonl", b"{}\n"))
    assert "two uploads have this name" in " ".join(response.context["form"].errors["queries"])


def test_a_valid_upload_stores_the_files_by_their_names_and_queues_the_job(
        as_staff, staff_user, settings, django_capture_on_commit_callbacks):
    files = {**small_upload(), "labels": [upload("pointwise.jsonl", b'{"query":"a","doc":"b","label":1}\n'),
                                          upload("../../evil name.jsonl", b'{"query":"a","doc":"c","label":0}\n')]}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_import(as_staff, collection="fresh", **files)
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("import-job", args=[job.pk])
    assert len(callbacks) == 1  # the worker is asked only once the job is committed
    assert job.collection.slug == "fresh" and job.created_by == staff_user and job.status == "pending"
    directory = Path(settings.DATA_DIR) / "uploads" / str(job.pk)
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["corpus.jsonl", "queries.jsonl", "qrels.tsv", "pointwise.jsonl", "evil_name.jsonl"])
    assert Path(job.files["qrels"]) == directory / "qrels.tsv"
    assert [Path(p).name for p in job.files["labels"]] == ["pointwise.jsonl", "evil_name.jsonl"]
    assert job.bytes_total == sum(p.stat().st_size for p in directory.iterdir())
