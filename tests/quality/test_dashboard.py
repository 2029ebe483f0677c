"""The staff quality dashboard renders every part from the kept reports; others are refused."""
from __future__ import annotations

import numpy as np
import pytest

from annotate.models import AgreementReport, Candidate
from annotate.quality.report import store_report

from .conftest import add_judgments, build_collection, noisy, people

pytestmark = pytest.mark.django_db


def simulated_collection(slug="dash"):
    collection = build_collection(slug=slug, queries=5, candidates=8, adjudication_alpha=0.5)
    users = people(collection, ["sim-a", "sim-b", "sim-c", "sim-careless"],
                   simulated={"sim-a", "sim-b", "sim-c", "sim-careless"})
    rng = np.random.default_rng(7)
    pks = list(Candidate.objects.filter(collection=collection).order_by("pk").values_list("pk", flat=True))
    truth = rng.integers(0, 4, len(pks))
    for name, user in users.items():
        grades = rng.integers(0, 4, len(pks)) if name == "sim-careless" else noisy(truth, rng, 0.15)
        add_judgments(collection, user, dict(zip(pks, map(int, grades))), seconds=float(rng.integers(3, 30)))
    return collection


def test_dashboard_shows_figures_trend_heatmap_grades_queries_and_flags(client, staff_user):
    collection = simulated_collection()
    store_report(collection=collection, bootstrap=100)
    store_report(collection=collection, bootstrap=100)
    client.force_login(staff_user)
    response = client.get(f"/c/{collection.slug}/quality/")
    assert response.status_code == 200
    html = response.content.decode()
    for section in ('id="overall"', 'id="trend"', 'id="heatmap"', 'id="grades"', 'id="annotators"', 'id="queries"'):
        assert section in html
    assert html.count("<svg") == 3
    report = AgreementReport.objects.first()
    low, high = report.overall["alpha_ordinal_ci95"]
    assert f"{low:.3f} – {high:.3f}" in html
    assert "agrees little with the others" in html  # the careless annotator's flag
    assert html.count('class="flagged"') == 1
    for entry in report.per_query:
        assert f"/c/{collection.slug}/adjudication/{entry['query_id']}/" in html
    assert "<polyline" in html  # two reports: a trend line


def test_dashboard_without_a_report_offers_to_compute_one(client, staff_user):
    collection = simulated_collection(slug="fresh")
    client.force_login(staff_user)
    html = client.get(f"/c/{collection.slug}/quality/").content.decode()
    assert 'id="no-report"' in html
    response = client.post(f"/c/{collection.slug}/quality/recompute/")
    assert response.status_code == 302
    assert AgreementReport.objects.filter(collection=collection).count() == 1
    assert 'id="annotators"' in client.get(f"/c/{collection.slug}/quality/").content.decode()


def test_annotators_cannot_see_the_dashboard_or_the_report(client):
    collection = simulated_collection(slug="closed")
    member = people(collection, ["member"])["member"]
    client.force_login(member)
    assert client.get(f"/c/{collection.slug}/quality/").status_code == 403
    assert client.get(f"/api/collections/{collection.slug}/quality/").status_code == 403


def test_report_api_serves_the_latest_report_and_computes_subsets(client, staff_user):
    collection = simulated_collection(slug="api")
    client.force_login(staff_user)
    assert client.get(f"/api/collections/{collection.slug}/quality/").json() == {"report": None}
    kept = store_report(collection=collection, bootstrap=10)
    latest = client.get(f"/api/collections/{collection.slug}/quality/").json()["report"]
    assert latest["id"] == kept.pk and latest["per_annotator"][0]["reliability"] is not None
    subset = client.get(f"/api/collections/{collection.slug}/quality/", {"query": "q1", "annotators": "sim-a,sim-b"})
    data = subset.json()["report"]
    assert data["id"] is None and data["n_judgments"] == 16 and data["scope"] == {"query": "q1", "annotators": ["sim-a", "sim-b"]}
    bad = client.get(f"/api/collections/{collection.slug}/quality/", {"query": "nope"})
    assert bad.status_code == 400 and "query 'nope' is not in collection api" in bad.json()["detail"]
    assert AgreementReport.objects.count() == 1  # subsets are not kept


def test_dashboard_shows_each_annotators_confusion_and_the_false_negative_lane(client, staff_user):
    collection = simulated_collection(slug="lane")
    kept = list(Candidate.objects.filter(collection=collection).order_by("pk")[:2])
    Candidate.objects.filter(pk__in=[c.pk for c in kept]).update(guard="margin")
    store_report(collection=collection, bootstrap=100)
    client.force_login(staff_user)
    html = client.get(f"/c/{collection.slug}/quality/").content.decode()
    report = AgreementReport.objects.latest_for(collection)
    careless = next(a for a in report.per_annotator if a["username"] == "sim-careless")
    careful = next(a for a in report.per_annotator if a["username"] == "sim-a")
    assert careless["reliability_basis"] == ["annotator model"] and len(careless["confusion"]) == 4
    assert careless["reliability"] < careful["reliability"]  # random grades tell little about the truth
    assert html.count('class="confusion"') == len(report.per_annotator)
    assert 'id="false-negative-lane"' in html and "<code>margin</code>" in html


def test_a_pair_sharing_one_item_is_greyed_with_its_count_and_an_undefined_figure_says_why(client, staff_user):
    """#16 finding 7: two annotators sharing one item showed "0.00" in deep red with no count, and
    Fleiss' kappa "undefined, 0 items" with the reason hidden in a tooltip."""
    import re

    from annotate.models import Candidate

    from .conftest import add_judgments, build_collection, people

    collection = build_collection(slug="thin", queries=1, candidates=3)
    users = people(collection, ["ann0", "ann1"])
    first, second, third = Candidate.objects.filter(collection=collection).order_by("pk")
    add_judgments(collection, users["ann0"], {first.pk: 0, second.pk: 2})
    add_judgments(collection, users["ann1"], {first.pk: 3, third.pk: 1})
    store_report(collection=collection, bootstrap=0)
    client.force_login(staff_user)
    html = client.get(f"/c/{collection.slug}/quality/").content.decode()
    heatmap = re.search(r'<section class="card" id="heatmap">.*?</section>', html, re.S).group()
    assert heatmap.count('fill="#ececec" data-items="1"') == 2  # both halves of the pair: greyed
    assert heatmap.count(">n=1</text>") == 2
    assert "on 1 shared item (fewer than 10: not a reliable figure)" in heatmap
    report = AgreementReport.objects.get()
    reason = report.overall["undefined"]["fleiss_kappa"]
    fleiss = re.search(r'<tr data-figure="fleiss_kappa">.*?</tr>', html, re.S).group()
    from django.utils.html import escape

    assert "undefined" in fleiss and f'<div class="why">{escape(reason)}</div>' in fleiss
