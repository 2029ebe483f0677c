"""The export's default labels come from the annotator model: a posterior per pair, read from a
Dawid–Skene fit over the judgments the export counts (annotate/export/annotate/quality/annotator_model.py)."""
from __future__ import annotations

import math

import pytest
from django.contrib.auth import get_user_model

from annotate.models import Adjudication, Candidate, Judgment

from .test_filters import exported, judge, qrels

pytestmark = pytest.mark.django_db


@pytest.fixture
def crew(db):
    User = get_user_model()
    return {name: User.objects.create_user(name) for name in ("honest1", "honest2", "shifted")}


def test_each_record_is_the_posterior_label_its_probability_and_expected_grade(graded_collection, crew):
    collection = graded_collection()
    truth = qrels(collection)
    for candidate in Candidate.objects.filter(collection=collection).select_related("query", "document"):
        grade = truth[(candidate.query.external_id, candidate.document.external_id)]
        judge(candidate, crew["honest1"], grade)
        judge(candidate, crew["honest2"], grade if candidate.pk % 5 else (grade + 1) % 4)
    for record in exported(collection).values():
        probs = record["grade_probs"]
        assert len(probs) == 4 and math.isclose(sum(probs), 1.0, abs_tol=1e-5)
        assert record["label"] == max(range(4), key=lambda g: (probs[g], -g))
        assert record["weight"] == pytest.approx(probs[record["label"]], abs=1e-6)
        assert record["soft_label"] == pytest.approx(sum(g * p for g, p in enumerate(probs)) / 3, abs=1e-5)
        assert record["n_judgments"] == 2  # people's grades; the imported label stands back (priors=fallback)


def test_an_annotator_who_always_grades_one_higher_is_decoded(graded_collection, crew):
    collection = graded_collection(queries=12)
    truth = qrels(collection)
    candidates = list(Candidate.objects.filter(collection=collection).select_related("query", "document"))
    alone = [c for c in candidates if truth[(c.query.external_id, c.document.external_id)] in (1, 2)][:4]
    for candidate in candidates:
        grade = truth[(candidate.query.external_id, candidate.document.external_id)]
        judge(candidate, crew["shifted"], min(grade + 1, 3))
        if candidate not in alone:
            judge(candidate, crew["honest1"], grade)
            judge(candidate, crew["honest2"], grade)
    records = exported(collection, priors="never")
    for candidate in alone:  # graded by the shifted annotator only: their 2 reads as 1, their 3 as 2
        key = (candidate.query.external_id, candidate.document.external_id)
        assert records[key]["label"] == truth[key]
    # The weighted median takes the shifted grade at face value.
    median = exported(collection, priors="never", method="median")
    assert all(median[(c.query.external_id, c.document.external_id)]["label"]
               == truth[(c.query.external_id, c.document.external_id)] + 1 for c in alone)


def test_adjudicated_and_gold_pairs_are_certain(graded_collection, crew):
    collection = graded_collection()
    first, second = Candidate.objects.filter(collection=collection).order_by("pk")[:2]
    judge(first, crew["honest1"], 0)
    judge(first, crew["honest2"], 1)
    Adjudication.objects.create(collection=collection, candidate=first, grade=3, reason="read it twice",
                                decided_by=get_user_model().objects.create_user("boss", is_staff=True))
    Candidate.objects.filter(pk=second.pk).update(is_gold=True, gold_grade=2)
    judge(second, crew["honest1"], 0)
    records = exported(collection)
    adjudicated = records[(first.query.external_id, first.document.external_id)]
    assert (adjudicated["label"], adjudicated["weight"], adjudicated["grade_probs"]) == (3, 1.0, [0, 0, 0, 1])
    gold = records[(second.query.external_id, second.document.external_id)]
    assert (gold["label"], gold["weight"], gold["grade_probs"]) == (2, 1.0, [0, 0, 1, 0])


def test_imported_labels_are_judges_of_their_own_when_priors_always(graded_collection, crew):
    collection = graded_collection()
    candidate = Candidate.objects.filter(collection=collection).order_by("pk").first()
    imported = Judgment.objects.get(candidate=candidate, annotator__isnull=True).grade
    judge(candidate, crew["honest1"], (imported + 2) % 4)
    key = (candidate.query.external_id, candidate.document.external_id)
    assert exported(collection)[key]["n_judgments"] == 1
    assert exported(collection, priors="always")[key]["n_judgments"] == 2


def test_an_export_of_unchanged_data_reads_the_reports_fit_and_writes_the_same_file(graded_collection, crew,
                                                                                    monkeypatch):
    from annotate.export.services import create_snapshot
    from annotate.quality import annotator_model
    from annotate.quality.report import store_report

    collection = graded_collection()
    truth = qrels(collection)
    for candidate in Candidate.objects.filter(collection=collection).select_related("query", "document"):
        grade = truth[(candidate.query.external_id, candidate.document.external_id)]
        judge(candidate, crew["honest1"], grade)
        judge(candidate, crew["shifted"], min(grade + 1, 3))
    fitted_now = create_snapshot(collection=collection, format="listwise", params={})
    store_report(collection=collection, bootstrap=10)
    fits = []
    real_fit = annotator_model.fit_collection_model
    monkeypatch.setattr(annotator_model, "fit_collection_model", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    from_report = create_snapshot(collection=collection, format="listwise", params={})
    assert fits == [] and from_report.sha256 == fitted_now.sha256
    # A new grade makes the report's fit stale: the export fits again.
    judge(Candidate.objects.filter(collection=collection).first(), crew["honest2"], 0)
    create_snapshot(collection=collection, format="listwise", params={})
    assert fits == [1]
