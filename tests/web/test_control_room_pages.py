"""Staff run the loop from the browser: start mining, export, and start a training run from pages
(#16), each form refusing bad values with the reason and nothing started."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotate.export import services as export_services
from annotate.models import (
    Candidate,
    Collection,
    Document,
    ExportSnapshot,
    Judgment,
    Query,
)
from mining.models import MiningJob
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(django_user_model):
    collection = Collection.objects.create(slug="room", name="Room", tokenizer="whitespace")
    annotator = django_user_model.objects.create_user("room-ann", password="pw")
    for q in range(4):
        query = Query.objects.create(collection=collection, external_id=f"q{q}", text=f"w{q} topic",
                                     content_hash=f"q{q}")
        for d in range(3):
            document = Document.objects.create(collection=collection, external_id=f"d{q}-{d}",
                                               text=f"w{q} text {d}", content_hash=f"d{q}{d}")
            candidate = Candidate.objects.create(collection=collection, query=query, document=document)
            Judgment.objects.create(collection=collection, candidate=candidate, annotator=annotator, grade=d)
    return collection


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def test_the_exports_page_starts_an_export_and_lists_snapshots_with_sha256_and_links(staff, judged):
    url = reverse("exports", args=["room"])
    assert "No exports yet" in staff.get(url).content.decode()
    response = staff.post(url, {"format": "listwise", "split": "all", "min_judgments": 0, "min_weight": 0.0})
    assert response.status_code == 302
    snapshot = ExportSnapshot.objects.get()
    assert (snapshot.format, snapshot.status) == ("listwise", ExportSnapshot.Status.PENDING)
    export_services.run_export_job(snapshot_id=snapshot.pk)  # what the worker does
    snapshot.refresh_from_db()
    html = staff.get(url).content.decode()
    assert f'data-snapshot="{snapshot.pk}" data-status="done"' in html
    assert snapshot.sha256[:14] in html and f'href="/api/exports/{snapshot.pk}/file/"' in html
    assert f"/c/room/training/?snapshot={snapshot.pk}#start-run" in html


@pytest.mark.parametrize("field, value, words", [
    ("format", "csv", "Select a valid choice"),
    ("min_weight", "1.5", "less than or equal to 1"),
    ("split", "everything", "Select a valid choice"),
])
def test_a_bad_export_field_is_refused_with_the_reason_and_nothing_starts(staff, judged, field, value, words):
    data = {"format": "listwise", "split": "all", "min_judgments": 0, "min_weight": 0.0, field: value}
    response = staff.post(reverse("exports", args=["room"]), data)
    assert response.status_code == 200 and words in response.content.decode()
    assert not ExportSnapshot.objects.exists()


def test_the_runs_page_starts_a_run_on_a_listwise_snapshot_with_its_settings(staff, judged):
    page = staff.get(reverse("training-runs", args=["room"])).content.decode()
    assert "No finished listwise export yet" in page
    snapshot = export_services.create_snapshot(collection=judged, format="listwise")
    page = staff.get(reverse("training-runs", args=["room"])).content.decode()
    assert 'id="start-run-form"' in page and f'value="{snapshot.pk}"' in page
    response = staff.post(reverse("training-runs", args=["room"]), {
        "snapshot": snapshot.pk, "candidates": ["zero-shot", "bi-encoder"], "epochs": 2, "min_dev_queries": 5})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("training-run", args=["room", run.pk])
    assert run.params == {"epochs": 2, "min_dev_queries": 5, "candidates": ["zero-shot", "bi-encoder"]}
    # A second run while one is active: refused with the reason, nothing started.
    again = staff.post(reverse("training-runs", args=["room"]), {"snapshot": snapshot.pk,
                                                                 "candidates": ["zero-shot"]})
    assert again.status_code == 200 and TrainingRun.objects.count() == 1
    assert "already" in again.content.decode()


def test_a_run_with_bad_settings_is_refused_with_the_reason(staff, judged):
    snapshot = export_services.create_snapshot(collection=judged, format="listwise")
    response = staff.post(reverse("training-runs", args=["room"]), {
        "snapshot": snapshot.pk, "candidates": ["zero-shot"], "promotion_margin": "3"})
    assert response.status_code == 200 and "less than or equal to 0.99" in response.content.decode()
    response = staff.post(reverse("training-runs", args=["room"]), {"snapshot": snapshot.pk, "candidates": []})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_the_mining_page_starts_a_job(staff, judged):
    page = staff.get(reverse("mining-jobs") + "?collection=room").content.decode()
    assert 'id="start-mining-form"' in page
    response = staff.post(reverse("mining-jobs"), {"collection": "room", "method": "bm25", "depth": 5, "negatives": 2})
    job = MiningJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("mining-job", args=[job.pk])
    assert (job.collection, job.method) == (judged, "bm25")
    bad = staff.post(reverse("mining-jobs"), {"collection": "room", "method": "magic", "depth": 0, "negatives": 2})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    assert "greater than or equal to 1" in bad.content.decode() and MiningJob.objects.count() == 1


def test_the_members_page_adds_an_existing_user_creates_a_new_one_and_removes_a_member(staff, judged,
                                                                                      django_user_model):
    from annotate.judging import assignment
    from annotate.models import GuidelineAcknowledgement, Lease, Membership

    url = reverse("members", args=["room"])
    django_user_model.objects.create_user("existing", password="pw")
    assert staff.post(url, {"username": "existing", "role": "annotator"}).status_code == 302
    assert staff.post(url, {"username": "newcomer", "password": "a-long-pass-phrase-42", "role": "annotator"}
                      ).status_code == 302
    assert set(Membership.objects.filter(collection=judged).values_list("user__username", flat=True)) == {
        "existing", "newcomer"}
    assert django_user_model.objects.get(username="newcomer").check_password("a-long-pass-phrase-42")

    for data, words in (({"username": "ghost", "role": "annotator"}, "no account &#x27;ghost&#x27;"),
                        ({"username": "existing", "role": "annotator"}, "already a member"),
                        ({"username": "weak", "password": "123", "role": "annotator"}, "too short"),
                        ({"username": "existing", "password": "x-long-pass-99", "role": "annotator"},
                         "its password is not changed here")):
        response = staff.post(url, data)
        assert response.status_code == 200 and words in response.content.decode(), data
    assert not django_user_model.objects.filter(username__in=["ghost", "weak"]).exists()

    newcomer = django_user_model.objects.get(username="newcomer")
    GuidelineAcknowledgement.objects.create(user=newcomer, version=judged.guideline_version)
    lease = assignment.next_task(collection=judged, annotator=newcomer)
    assert lease is not None
    page = staff.get(url).content.decode()
    assert 'data-member="newcomer"' in page
    response = staff.post(reverse("member-remove", args=["room", newcomer.pk]), follow=True)
    assert "newcomer removed from room; 1 open task(s) given back" in response.content.decode()
    assert not Membership.objects.filter(user=newcomer).exists()
    assert Lease.objects.get(pk=lease.pk).status != Lease.Status.ACTIVE


def test_the_overview_counts_coverage_up_to_k_the_pace_and_the_eta(staff, judged, django_user_model):
    """`judged`: 12 candidates, one person's grade each; k = 2, so 24 grades are needed."""
    from datetime import timedelta

    from django.utils import timezone

    from annotate.quality.overview import overview

    judged.overlap_k = 2
    judged.save()
    others = [django_user_model.objects.create_user(f"o{i}", password="pw") for i in range(2)]
    first = Candidate.objects.filter(collection=judged).order_by("pk").first()
    for other in others:  # 3 grades on one candidate: it still covers 2
        Judgment.objects.create(collection=judged, candidate=first, annotator=other, grade=1)
    Judgment.objects.create(collection=judged, candidate=first, source="qrels:x", grade=3)  # not a person's
    figures = overview(judged)
    assert (figures["needed"], figures["given"], figures["covered"], figures["left"]) == (24, 13, 1, 11)
    assert figures["per_hour"] == pytest.approx(14 / 24)  # every person's grade was made today
    assert figures["eta_hours"] == pytest.approx(11 / (14 / 24))
    assert overview(judged, now=timezone.now() + timedelta(days=3))["pace_window"] == "the last 7 days"
    html = staff.get(reverse("collection-overview", args=["room"])).content.decode()
    assert 'data-field="given">13 / 24<' in html and 'data-field="left">11<' in html
    assert "18.9 hours" in html and "no report yet" in html


def test_staff_create_a_collection_and_edit_its_rules_with_bad_values_refused(staff, judged):
    response = staff.post(reverse("collection-new"), {
        "slug": "fresh", "name": "Fresh", "overlap_k": 2, "lease_minutes": 20, "guideline_version": "v1",
        "judging_view": "listwise", "tokenizer": "jieba", "gold_rate": 0.1, "agreement_every": 50,
        "adjudication_alpha": 0.3, "is_active": "on"})
    assert response.status_code == 302 and response["Location"] == reverse("collection-overview", args=["fresh"])
    fresh = Collection.objects.get(slug="fresh")
    assert (fresh.overlap_k, fresh.tokenizer, fresh.gold_rate) == (2, "jieba", 0.1)

    url = reverse("collection-settings", args=["fresh"])
    base = {"name": "Fresh", "overlap_k": 3, "lease_minutes": 20, "guideline_version": "v1",
            "judging_view": "pair", "gold_rate": 0.1, "agreement_every": 50, "adjudication_alpha": 0.3,
            "is_active": "on", "slug": "renamed", "tokenizer": "bigram"}
    assert staff.post(url, base).status_code == 302
    fresh.refresh_from_db()
    assert (fresh.overlap_k, fresh.judging_view) == (3, "pair")
    assert (fresh.slug, fresh.tokenizer) == ("fresh", "jieba")  # fixed once the collection exists
    for field, value, words in (("overlap_k", 0, "greater than or equal to 1"),
                                ("gold_rate", 0.9, "less than or equal to 0.5"),
                                ("guideline_version", "v9", "Select a valid choice"),
                                ("adjudication_alpha", 2, "must be between -1 and 1")):
        bad = staff.post(url, {**base, field: value})
        assert bad.status_code == 200 and words in bad.content.decode(), field
    fresh.refresh_from_db()
    assert (fresh.overlap_k, fresh.gold_rate, fresh.guideline_version) == (3, 0.1, "v1")
    taken = staff.post(reverse("collection-new"), {**base, "slug": "room"})
    assert taken.status_code == 200 and "already exists" in taken.content.decode()


def test_every_staff_page_has_a_plain_title_and_one_body(staff, judged):
    """A template whose title block swallowed the page (the runs page once did) still answered 200."""
    import re

    urls = [reverse("home"), reverse("collection-new")]
    urls += [reverse(name, args=["room"]) for name in (
        "collection-overview", "members", "collection-settings", "exports", "training-runs", "retrain-schedule",
        "search-preview", "quality-dashboard", "adjudication-queue")]
    urls += [reverse("mining-jobs"), reverse("import-new")]
    for url in urls:
        html = staff.get(url).content.decode()
        title = re.search(r"<title>(.*?)</title>", html, re.S)
        assert title and "<" not in title.group(1) and len(title.group(1)) < 120, url
        assert html.count("<main>") == 1 and html.count("</html>") == 1, url


def test_the_mining_defaults_are_edited_and_checked_as_a_job_checks_them(staff, judged):
    url = reverse("mining-settings", args=["room"])
    good = '{"premine_method": "hybrid", "ready_per_annotator": 3, "depth": 20, "margin": 0.1, "bm25": {"k1": 1.2}}'
    assert staff.post(url, {"settings": good}).status_code == 302
    judged.refresh_from_db()
    assert judged.mining_settings["premine_method"] == "hybrid" and judged.mining_settings["bm25"] == {"k1": 1.2}
    for bad, words in (('{"premine_method": "magic"}', "method must be one of"),
                       ('{"depth": 0}', "depth must be between 1 and 10000"),
                       ('{"ready_per_annotator": "many"}', "ready_per_annotator must be an integer"),
                       ('{"bm25": {"b": 2}}', "bm25.b must be between 0 and 1"),
                       ('{"deepness": 3}', "unknown mining setting(s): deepness"),
                       ("[1, 2]", "must be a JSON object"),
                       ("{oops", "Enter a valid JSON")):
        response = staff.post(url, {"settings": bad})
        assert response.status_code == 200 and words in response.content.decode(), bad
    judged.refresh_from_db()
    assert judged.mining_settings["depth"] == 20  # nothing half-saved
