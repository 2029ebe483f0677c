"""The catalogue of bad input, API side: each request is refused with 400/404 and a JSON message
naming the problem (the field and what is wrong with it); nothing is stored."""
from __future__ import annotations

import json

import pytest

from annotate.judging import assignment
from annotate.models import Document, GuidelineAcknowledgement, Judgment
from mining.text.highlight import highlight

from ..workbench.factories import make_annotators, make_collection

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(client):
    collection = make_collection(slug="bad", queries=1, candidates=3, k=2)
    (annotator,) = make_annotators(collection, 1)
    GuidelineAcknowledgement.objects.create(user=annotator, version=collection.guideline_version)
    lease = assignment.next_task(collection=collection, annotator=annotator)
    client.force_login(annotator)
    return lease


def candidate_of(lease) -> int:
    return assignment.task_candidate_ids(lease)[0]


# body overrides -> (status, field, words the message must contain)
JUDGMENT_CASES = {
    "grade 4": ({"grade": 4}, 400, "grade", "less than or equal to 3"),
    "grade -1": ({"grade": -1}, 400, "grade", "greater than or equal to 0"),
    "grade 2.5": ({"grade": 2.5}, 400, "grade", "JSON integer is required"),
    "grade true": ({"grade": True}, 400, "grade", "JSON integer is required"),
    "grade a list": ({"grade": [2]}, 400, "grade", "JSON integer is required"),
    "grade a huge number": ({"grade": 10**30}, 400, "grade", "less than or equal to 3"),
    "candidate a string": ({"candidate": "first"}, 400, "candidate", "JSON integer is required"),
    "candidate unknown": ({"candidate": 987654321}, 404, "detail", "candidate"),
    "note with NUL": ({"note": "a\x00b"}, 400, "note", "Null characters"),
    "negative seconds": ({"seconds_spent": -1}, 400, "seconds_spent", "greater than or equal to 0"),
    "no idempotency key": ({"idempotency_key": None}, 400, "idempotency_key", "may not be null"),
}


@pytest.mark.parametrize("case", sorted(JUDGMENT_CASES))
def test_a_bad_judgment_is_refused_with_the_field_named(client, task, case):
    override, status, field, words = JUDGMENT_CASES[case]
    body = {"candidate": candidate_of(task), "grade": 2, "idempotency_key": f"k-{case}", **override}
    response = client.post(f"/api/tasks/{task.pk}/judgments/", json.dumps(body), content_type="application/json")
    assert response.status_code == status, response.content
    payload = response.json()
    message = json.dumps(payload)
    assert field in payload or field in message, message
    assert words.lower() in message.lower(), message
    assert not Judgment.objects.exists()


@pytest.mark.parametrize("raw, words", [
    (b"{not json", "JSON parse error"),
    (b"[1, 2]", "Invalid data"),
    (b"\xff\xfe{}", "JSON parse error"),
])
def test_a_body_that_is_not_a_json_object_is_named(client, task, raw, words):
    response = client.post(f"/api/tasks/{task.pk}/judgments/", raw, content_type="application/json")
    assert response.status_code == 400
    assert words in json.dumps(response.json())


def test_an_unknown_task_is_a_json_404(client, task):
    response = client.post("/api/tasks/999999/judgments/", "{}", content_type="application/json")
    assert response.status_code == 404 and "detail" in response.json()


def test_a_slug_the_url_refuses_is_a_json_404(client, task):
    response = client.get("/api/collections/bad%20slug%00/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert "No API route matches" in response.json()["detail"]


@pytest.mark.parametrize("body, words", [
    ({"format": "csv"}, "format"),
    ({"format": "listwise", "params": {"split": "everything"}}, "split"),
    ({"format": "listwise", "params": {"method": "vote"}}, "method"),
])
def test_bad_export_parameters_are_named(client, staff_user, body, words):
    make_collection(slug="exp", queries=1, candidates=2)
    client.force_login(staff_user)
    response = client.post("/api/collections/exp/exports/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert words in json.dumps(response.json())


def test_training_run_with_an_unknown_snapshot_is_named(client, staff_user):
    make_collection(slug="tr", queries=1, candidates=2)
    client.force_login(staff_user)
    response = client.post("/api/collections/tr/training-runs/", json.dumps({"snapshot": 99999}),
                           content_type="application/json")
    assert response.status_code in (400, 404), response.content
    assert "snapshot" in json.dumps(response.json()).lower()


def test_training_run_with_a_bad_parameter_is_refused_naming_it(client, staff_user, tmp_path):
    from training.models import TrainingRun

    from ..training_loop.conftest import make_snapshot, snapshot_file

    collection = make_collection(slug="tp", queries=1, candidates=2)
    snapshot = make_snapshot(collection, snapshot_file(tmp_path / "s.jsonl"))
    client.force_login(staff_user)
    response = client.post("/api/collections/tp/training-runs/",
                           json.dumps({"snapshot": snapshot.pk, "params": {"add_cjk_vocab": "yes"}}),
                           content_type="application/json")
    assert response.status_code == 400, response.content
    assert "add_cjk_vocab must be true or false" in response.json()["params"][0]
    assert not TrainingRun.objects.exists()


def test_a_5_mb_document_is_stored_whole_and_served_by_the_task_api(client, task):
    """No per-document limit is documented (uploads are capped by IMPORT_UPLOAD_MAX_BYTES, 512 MB):
    a 5 MB document is kept and shown, not cut or refused."""
    document = Document.objects.get(candidates__pk=candidate_of(task))
    big = ("pizza dough <b>x</b> " * 260_000)[: 5 * 1024 * 1024]
    Document.objects.filter(pk=document.pk).update(text=big)
    response = client.get(f"/api/tasks/{task.pk}/")
    assert response.status_code == 200
    assert big.encode() in response.content  # whole; the page puts it in as text (tests/browser/test_html_in_text.py)


def test_the_highlighter_escapes_markup_around_and_inside_terms():
    assert str(highlight("<script>pizza</script>", ["pizza"])) == "&lt;script&gt;<mark>pizza</mark>&lt;/script&gt;"
    assert str(highlight("a <b> c", ["<b>"])) == "a <mark>&lt;b&gt;</mark> c"
    assert str(highlight("x onerror=alert(1)", [])) == "x onerror=alert(1)"


def test_too_many_form_fields_is_a_json_400_naming_the_limit(client, task, settings):
    """Found by bench/fuzz.py: Django's own 400 for too many fields was an HTML page."""
    fields = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client.post(f"/api/tasks/{task.pk}/judgments/", fields, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]


def test_a_body_over_the_upload_limit_is_a_json_400_naming_the_limit(client, task, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    response = client.post(f"/api/tasks/{task.pk}/judgments/", json.dumps({"note": "x" * 1_100_000}),
                           content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith("Request body is larger than 1 MB (DATA_UPLOAD_MAX_MEMORY_SIZE)")


# --- The collection form of the admin (the staff's way to create and configure a collection) ---
COLLECTION_CASES = {
    "slug with spaces": ({"slug": "not a slug"}, "slug", "letters"),
    "slug with capitals": ({"slug": "Upper"}, "slug", "lower-case"),
    "overlap 0": ({"overlap_k": "0"}, "overlap_k", "greater than or equal to 1"),
    "overlap 51": ({"overlap_k": "51"}, "overlap_k", "less than or equal to 50"),
    "overlap text": ({"overlap_k": "three"}, "overlap_k", "whole number"),
    "lease 0": ({"lease_minutes": "0"}, "lease_minutes", "greater than or equal to 1"),
    "gold rate 0.9": ({"gold_rate": "0.9"}, "gold_rate", "less than or equal to 0.5"),
    "mining settings not JSON": ({"mining_settings": "{bm25"}, "mining_settings", "valid JSON"),
    "NUL in the name": ({"name": "a\x00b"}, "name", "Null characters"),
    "unknown judging view": ({"judging_view": "gallery"}, "judging_view", "Select a valid choice"),
}


@pytest.mark.parametrize("case", sorted(COLLECTION_CASES))
def test_the_admin_collection_form_names_a_bad_field(rf, staff_user, case):
    from django.contrib import admin

    from annotate.models import Collection

    override, field, words = COLLECTION_CASES[case]
    model_admin = admin.site._registry[Collection]
    request = rf.post("/admin/annotate/collection/add/")
    request.user = staff_user
    form_class = model_admin.get_form(request)
    valid = {name: str(value) for name, value in form_class(initial={}).initial.items()}
    data = {"slug": "good", "name": "Good", "overlap_k": "3", "lease_minutes": "30", "guideline_version": "v1",
            "judging_view": "listwise", "tokenizer": "auto", "mining_settings": "{}", "gold_rate": "0",
            "agreement_every": "200", "adjudication_alpha": "0.667", "corpus_version": "0", "is_active": "on",
            **valid, **override}
    form = form_class(data)
    assert not form.is_valid()
    assert field in form.errors, form.errors
    assert words.lower() in " ".join(form.errors[field]).lower(), form.errors[field]


def test_a_5_mb_document_imports_whole(tmp_path):
    """The importers document no per-document limit (only uploads, IMPORT_UPLOAD_MAX_BYTES): a 5 MB
    document with markup and CJK is stored byte for byte."""
    from io import StringIO

    from django.core.management import call_command

    unit = "南京 pizza <script>x</script> "
    big = unit * (5 * 1024 * 1024 // len(unit.encode()) + 1)
    assert len(big.encode()) >= 5 * 1024 * 1024
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"_id": "big", "text": big}, ensure_ascii=False) + "\n", encoding="utf-8")
    call_command("import_data", "big", "--corpus", str(corpus), stdout=StringIO(), stderr=StringIO())
    assert Document.objects.get(collection__slug="big", external_id="big").text == big
