"""The stored report: figures from the database, what the export reads, subsets, the command's filters."""
from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from annotate.agreement import Ratings, compute_agreement
from annotate.export.reports import annotator_reliabilities, low_alpha_queries
from annotate.models import AgreementReport, Candidate
from annotate.quality.report import compute_report, store_report
from annotate.quality.scope import AgreementScope, ScopeError

from .conftest import add_judgments, build_collection, noisy, people

pytestmark = pytest.mark.django_db


@pytest.fixture
def graded():
    """4 queries x 10 candidates; ann0..ann2 careful, 'random' grades at random; q3 is a coin toss for all."""
    collection = build_collection(queries=4, candidates=10, adjudication_alpha=0.4)
    users = people(collection, ["ann0", "ann1", "ann2", "random"], simulated={"random"})
    rng = np.random.default_rng(1)
    candidates = list(Candidate.objects.filter(collection=collection).order_by("pk").values_list("pk", "query__external_id"))
    truth = rng.integers(0, 4, len(candidates))
    for name, user in users.items():
        grades = rng.integers(0, 4, len(candidates)) if name == "random" else noisy(truth, rng, 0.1)
        grades = [int(rng.integers(0, 4)) if query == "q3" else int(g) for (pk, query), g in zip(candidates, grades)]
        add_judgments(collection, user, {pk: g for (pk, _), g in zip(candidates, grades)}, seconds=7.5)
    return collection, users


def test_report_figures_equal_the_agreement_of_the_collection_grades(graded):
    collection, users = graded
    data = compute_report(collection, bootstrap=100)
    rows = list(collection.judgments.values_list("candidate_id", "annotator_id", "grade"))
    expected = compute_agreement(Ratings.from_arrays(*zip(*rows)), bootstrap=100)
    for name in ("krippendorff_alpha_ordinal", "krippendorff_alpha_interval", "fleiss_kappa", "percent_agreement",
                 "cohen_kappa_quadratic_mean"):
        assert data["overall"][name] == pytest.approx(getattr(expected, name), abs=1e-12)
    assert data["overall"]["alpha_ordinal_ci95"] == pytest.approx(list(expected.alpha_ordinal_ci95))
    assert data["n_judgments"] == len(rows) == 160
    assert len(data["per_pair"]) == 6


def test_report_row_carries_what_the_export_reads(graded):
    collection, users = graded
    report = store_report(collection=collection, bootstrap=50)
    assert AgreementReport.objects.get() == report
    entries = {entry["username"]: entry for entry in report.per_annotator}
    assert set(entries) == set(users)
    for entry in entries.values():
        assert {"annotator_id", "username", "reliability", "is_simulated", "flags"} <= set(entry)
        assert 0.0 <= entry["reliability"] <= 1.0
    assert entries["random"]["is_simulated"] and not entries["ann0"]["is_simulated"]
    assert "low_consensus" in entries["random"]["flags"]
    reliabilities = annotator_reliabilities(report)
    assert reliabilities[users["random"].pk] < min(reliabilities[users[n].pk] for n in ("ann0", "ann1", "ann2"))
    # per_query: only queries below the threshold; the coin-toss query q3 is among them
    assert report.per_query and all(e["alpha_ordinal"] < 0.4 for e in report.per_query)
    assert {"query_id", "external_id", "alpha_ordinal", "n_items", "n_judgments"} <= set(report.per_query[0])
    assert "q3" in {e["external_id"] for e in report.per_query}
    q3 = next(e for e in report.per_query if e["external_id"] == "q3")
    assert q3["n_items"] == 10 and q3["n_judgments"] == 40
    pks, _ = low_alpha_queries(report, 0.4)
    assert q3["query_id"] in pks
    counts = report.overall["queries"]
    assert counts["judged"] == 4 and counts["below_threshold"] == len(report.per_query)


def test_query_alpha_in_the_report_equals_alpha_of_that_query_alone(graded):
    collection, _ = graded
    collection.adjudication_alpha = 2.0  # every query listed
    collection.save()
    data = compute_report(collection, bootstrap=0)
    for entry in data["per_query"]:
        alone = compute_report(collection, scope=AgreementScope.parse(query=entry["external_id"]), bootstrap=0)
        assert entry["alpha_ordinal"] == pytest.approx(alone["overall"]["krippendorff_alpha_ordinal"], abs=1e-12)


def test_skips_count_as_skips_not_grades(graded):
    collection, users = graded
    candidate = Candidate.objects.filter(collection=collection).first()
    collection.judgments.filter(annotator=users["ann1"], candidate=candidate).update(grade=None, skipped=True,
                                                                                      skip_reason="broken")
    data = compute_report(collection, bootstrap=0)
    assert data["overall"]["skips"] == 1 and data["n_judgments"] == 159
    ann1 = next(e for e in data["per_annotator"] if e["username"] == "ann1")
    assert ann1["n_skips"] == 1 and ann1["skip_share"] == pytest.approx(1 / 40)


def test_subset_by_annotator_pair_date_range_and_guideline_version(graded, yesterday):
    collection, users = graded
    pair = compute_report(collection, scope=AgreementScope.parse(annotators="ann0,ann1"), bootstrap=0)
    assert pair["overall"]["n_annotators"] == 2 and len(pair["per_pair"]) == 1
    assert pair["overall"]["cohen_kappa_quadratic_mean"] == pytest.approx(pair["per_pair"][0]["kappa_quadratic"])
    collection.judgments.filter(annotator=users["random"]).update(updated_at=yesterday, guideline_version="v0")
    today = timezone.localdate().isoformat()
    recent = compute_report(collection, scope=AgreementScope.parse(since=today), bootstrap=0)
    assert {e["username"] for e in recent["per_annotator"]} == {"ann0", "ann1", "ann2"}
    old = compute_report(collection, scope=AgreementScope.parse(until=(yesterday + timedelta(seconds=1)).isoformat()),
                         bootstrap=0)
    assert {e["username"] for e in old["per_annotator"]} == {"random"}
    v0 = compute_report(collection, scope=AgreementScope.parse(guideline_version="v0"), bootstrap=0)
    assert v0["n_judgments"] == 40 and v0["scope"] == {"guideline_version": "v0"}


@pytest.mark.parametrize("filters, message", [
    ({"annotators": "ann0"}, "two different usernames"),
    ({"annotators": "ann0,ann0"}, "two different usernames"),
    ({"since": "yesterday"}, "since 'yesterday' is not a date"),
    ({"since": "2026-02-01", "until": "2026-01-01"}, "is after until"),
])
def test_bad_subset_filters_are_named(filters, message):
    with pytest.raises(ScopeError, match=message):
        AgreementScope.parse(**filters)


def test_agreement_command_takes_the_subset_filters(graded):
    collection, _ = graded
    out = StringIO()
    call_command("agreement", collection.slug, "--query", "q1", "--annotators", "ann0,ann2", "--bootstrap", "0",
                 "--json", stdout=out)
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    expected = compute_report(collection, scope=AgreementScope.parse(query="q1", annotators="ann0,ann2"), bootstrap=0)
    assert result["n_judgments"] == expected["n_judgments"] == 20
    assert result["krippendorff_alpha_ordinal"] == pytest.approx(expected["overall"]["krippendorff_alpha_ordinal"])
    with pytest.raises(CommandError, match="query 'nope' is not in collection qc"):
        call_command("agreement", collection.slug, "--query", "nope", "--json", stdout=StringIO())
    with pytest.raises(CommandError, match="annotator 'ghost' does not exist"):
        call_command("agreement", collection.slug, "--annotators", "ann0,ghost", stdout=StringIO())
    with pytest.raises(CommandError, match="--query: subset filters apply to a COLLECTION"):
        call_command("agreement", "--ratings", "x.csv", "--query", "q1", stdout=StringIO())


def test_an_empty_collection_reports_without_figures():
    collection = build_collection(slug="empty", queries=1, candidates=2)
    data = compute_report(collection, bootstrap=10)
    assert data["n_judgments"] == 0 and data["per_annotator"] == [] and data["per_query"] == []
    assert data["overall"]["krippendorff_alpha_ordinal"] is None
