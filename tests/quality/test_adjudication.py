"""Adjudication: staff see everyone's grades and notes side by side and keep a final grade with a reason."""
from __future__ import annotations

import pytest

from annotate.models import Adjudication, Candidate
from annotate.quality.adjudication import (
    AdjudicationError,
    adjudicate,
    disagreements,
    needs_adjudication,
)
from annotate.quality.report import store_report

from .conftest import add_judgments, build_collection, people

pytestmark = pytest.mark.django_db


@pytest.fixture
def disputed():
    """q0: ann0 says 0 with a note, ann1 says 3 with a note, ann2 skipped; other queries agree."""
    collection = build_collection(slug="adj", queries=3, candidates=4, adjudication_alpha=0.5)
    users = people(collection, ["ann0", "ann1", "ann2"])
    q0 = list(Candidate.objects.filter(query__external_id="q0").order_by("pk"))
    add_judgments(collection, users["ann0"], {c.pk: 0 for c in q0}, note="off topic")
    add_judgments(collection, users["ann1"], {c.pk: 3 for c in q0}, note="exactly what was asked")
    add_judgments(collection, users["ann2"], {c.pk: None for c in q0})
    others = Candidate.objects.exclude(query__external_id="q0").order_by("pk")
    for user in users.values():
        add_judgments(collection, user, {c.pk: (c.pk % 4) for c in others})
    return collection, users, q0


def test_staff_see_all_grades_and_notes_side_by_side_and_set_a_final_grade(client, staff_user, disputed):
    collection, users, q0 = disputed
    store_report(collection=collection, bootstrap=0)
    client.force_login(staff_user)
    queue = client.get(f"/c/{collection.slug}/adjudication/")
    assert queue.status_code == 200
    query = q0[0].query
    assert f"/c/{collection.slug}/adjudication/{query.pk}/" in queue.content.decode()

    page = client.get(f"/c/{collection.slug}/adjudication/{query.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    for name in ("ann0", "ann1", "ann2"):
        assert f'<th class="annotator">{name}</th>' in html
    assert "off topic" in html and "exactly what was asked" in html and "skipped" in html

    target = q0[1]
    response = client.post(f"/c/{collection.slug}/adjudication/{query.pk}/",
                           {"candidate": target.pk, "grade": "2", "reason": "partly answers: about the topic"})
    assert response.status_code == 302
    decision = Adjudication.objects.get()
    assert (decision.candidate, decision.grade, decision.decided_by, decision.reason) == (
        target, 2, staff_user, "partly answers: about the topic")
    again = client.get(f"/c/{collection.slug}/adjudication/{query.pk}/").content.decode()
    assert "partly answers: about the topic" in again and f"by {staff_user.username}" in again


def test_each_decision_is_kept_and_the_latest_wins_in_the_export(staff_user, disputed):
    from annotate.export.filters import ExportParams
    from annotate.export.labelling import ReadContext as _Context

    collection, _, q0 = disputed
    adjudicate(candidate=q0[0], grade=1, reason="first look", decided_by=staff_user)
    adjudicate(candidate=q0[0], grade=3, reason="after reading the guideline again", decided_by=staff_user)
    assert Adjudication.objects.filter(candidate=q0[0]).count() == 2
    context = _Context(collection, ExportParams(), None)
    assert context._adjudications([q0[0].pk]) == {q0[0].pk: 3}


def test_a_decision_needs_staff_a_reason_and_a_grade_on_the_scale(staff_user, disputed):
    _, users, q0 = disputed
    with pytest.raises(AdjudicationError, match="only staff"):
        adjudicate(candidate=q0[0], grade=1, reason="x", decided_by=users["ann0"])
    with pytest.raises(AdjudicationError, match="needs a reason"):
        adjudicate(candidate=q0[0], grade=1, reason="  ", decided_by=staff_user)
    with pytest.raises(AdjudicationError, match="0..3"):
        adjudicate(candidate=q0[0], grade=4, reason="x", decided_by=staff_user)
    assert not Adjudication.objects.exists()


def test_non_staff_are_refused_pages_and_api(client, disputed):
    collection, users, q0 = disputed
    client.force_login(users["ann0"])
    query = q0[0].query
    assert client.get(f"/c/{collection.slug}/adjudication/").status_code == 403
    assert client.get(f"/c/{collection.slug}/adjudication/{query.pk}/").status_code == 403
    assert client.post(f"/c/{collection.slug}/adjudication/{query.pk}/",
                       {"candidate": q0[0].pk, "grade": "3", "reason": "mine"}).status_code == 403
    assert client.get(f"/api/collections/{collection.slug}/adjudication/queries/{query.pk}/").status_code == 403
    assert client.post(f"/api/collections/{collection.slug}/adjudications/",
                       {"candidate": q0[0].pk, "grade": 3, "reason": "mine"},
                       content_type="application/json").status_code == 403
    assert not Adjudication.objects.exists()


def test_the_api_shows_the_sheet_and_records_a_decision(client, staff_user, disputed):
    collection, _, q0 = disputed
    client.force_login(staff_user)
    query = q0[0].query
    sheet = client.get(f"/api/collections/{collection.slug}/adjudication/queries/{query.pk}/").json()
    assert sheet["annotators"] == ["ann0", "ann1", "ann2"]
    first = next(c for c in sheet["candidates"] if c["candidate"] == q0[0].pk)
    assert {(j["annotator"], j["grade"], j["skipped"], j["note"]) for j in first["judgments"]} == {
        ("ann0", 0, False, "off topic"), ("ann1", 3, False, "exactly what was asked"), ("ann2", None, True, "")}
    assert first["spread"] == 3 and first["final"] is None
    made = client.post(f"/api/collections/{collection.slug}/adjudications/",
                       {"candidate": q0[0].pk, "grade": 2, "reason": "half of it"}, content_type="application/json")
    assert made.status_code == 201 and made.json()["adjudication"]["decided_by"] == staff_user.username
    missing_reason = client.post(f"/api/collections/{collection.slug}/adjudications/",
                                 {"candidate": q0[0].pk, "grade": 2}, content_type="application/json")
    assert missing_reason.status_code == 400 and "reason" in missing_reason.json()["detail"]
    after = client.get(f"/api/collections/{collection.slug}/adjudication/queries/{query.pk}/").json()
    assert next(c for c in after["candidates"] if c["candidate"] == q0[0].pk)["final"]["grade"] == 2


def test_the_queue_lists_low_alpha_queries_and_wide_disagreements(staff_user, disputed):
    collection, _, q0 = disputed
    report = store_report(collection=collection, bootstrap=0)
    queue = needs_adjudication(collection, report)
    assert [entry["external_id"] for entry in queue][:1] == ["q0"]
    assert queue[0]["settled"] == 0 and queue[0]["candidates"] == 4
    wide = disagreements(collection)
    assert {row["candidate_id"] for row in wide} == {c.pk for c in q0}
    adjudicate(candidate=q0[0], grade=2, reason="settled", decided_by=staff_user)
    assert disagreements(collection)[-1]["candidate_id"] == q0[0].pk  # settled ones go last
    assert needs_adjudication(collection, report)[0]["settled"] == 1


def test_the_sheet_starts_undecided_shows_reference_labels_and_says_the_grade_was_set(client, staff_user, disputed):
    """#16 finding 7: every dropdown started at 0 (a click on "Set" kept a 0 nobody chose), the
    flash said "kept", and imported reference labels were not shown beside the annotators' grades."""
    import re

    from annotate.models import Judgment

    collection, users, q0 = disputed
    Judgment.objects.create(collection=collection, candidate=q0[0], source="qrels:qrels.tsv", grade=3)
    client.force_login(staff_user)
    url = f"/c/{collection.slug}/adjudication/{q0[0].query.pk}/"
    html = client.get(url).content.decode()
    row = re.search(rf'<tr id="candidate-{q0[0].pk}".*?</tr>', html, re.S).group()
    assert re.search(r'<td class="references">.*?>3</span> <small>qrels:qrels.tsv</small>', row, re.S)
    select = re.search(r"<select name=\"grade\".*?</select>", row, re.S).group()
    assert '<option value="" selected disabled>choose…</option>' in select
    assert not re.search(r'<option value="\d" selected', select)  # no grade chosen for the staff member
    response = client.post(url, {"candidate": q0[0].pk, "reason": "no grade chosen"}, follow=True)
    assert "choose a final grade 0..3" in response.content.decode() and not Adjudication.objects.exists()
    response = client.post(url, {"candidate": q0[0].pk, "grade": "1", "reason": "marginal"}, follow=True)
    assert f"Final grade 1 set for {q0[0].document.external_id}" in response.content.decode()
    decided = re.search(rf'<tr id="candidate-{q0[0].pk}".*?</tr>', response.content.decode(), re.S).group()
    assert '<option value="1" selected>' in decided and "choose…" not in decided
