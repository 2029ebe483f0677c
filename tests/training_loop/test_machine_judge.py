"""The machine judge (training.machine_judge): calibrated to people's grades on train queries, written
as a source of its own, never shown to annotators, safe to run twice."""
from __future__ import annotations

import numpy as np
from django.contrib.auth import get_user_model
from sklearn.metrics import cohen_kappa_score

from annotate.models import (
    MACHINE_SOURCE,
    Candidate,
    Collection,
    Document,
    Judgment,
    Query,
)
from training.machine_judge import (
    MIN_CALIBRATION_GRADES,
    SCORE_AND_TEXT,
    SCORE_ONLY,
    fit_ordinal_calibration,
    judge_collection,
)

from .conftest import FILLER, query_texts


def test_the_calibration_gives_nested_probabilities_that_follow_the_score():
    rng = np.random.default_rng(0)
    grades = rng.integers(0, 4, 400)
    scores = grades + rng.normal(0, 0.3, 400)           # a good model: score tracks the grade
    calibration = fit_ordinal_calibration(scores, grades)
    probs = calibration.probabilities(scores)
    assert np.allclose(probs.sum(axis=1), 1.0) and (probs >= -1e-12).all()
    assert cohen_kappa_score(grades, probs.argmax(axis=1), weights="linear") > 0.8
    expected = probs @ np.arange(4)
    order = np.argsort(scores)
    assert (np.diff(expected[order]) >= -1e-9).all()    # a higher score never means a lower grade
    # a model that knows nothing: every pair gets the same probabilities, the people's shares
    flat = fit_ordinal_calibration(np.zeros(400), grades).probabilities(np.zeros(3))
    assert np.allclose(flat[0], np.bincount(grades, minlength=4) / 400)


def test_a_grade_nobody_gave_gets_no_probability():
    calibration = fit_ordinal_calibration([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1])
    assert np.allclose(calibration.probabilities([0.95])[0, 2:], 0.0)


def test_every_candidate_gets_a_machine_grade_once_and_a_rerun_changes_nothing(graded_collection, tiny_model):
    first = judge_collection(collection=graded_collection, model_dir=tiny_model)
    assert first.skipped_reason == "" and first.scored == 80 and first.added == 80
    assert first.calibration_grades == 60  # train queries only: the dev queries' 20 grades stay out
    assert first.calibration == SCORE_ONLY  # 60 grades: too few to fit the text calibration on
    assert first.calibration_reason.startswith("60 grades on 12 queries: the text calibration needs")
    machine = Judgment.objects.filter(collection=graded_collection, source=MACHINE_SOURCE)
    assert machine.count() == 80 and not machine.filter(annotator__isnull=False).exists()
    again = judge_collection(collection=graded_collection, model_dir=tiny_model)
    assert (again.added, again.changed) == (0, 0)


def test_the_judge_keeps_its_ranking_and_probabilities_for_the_judging_order(graded_collection, tiny_model):
    from annotate.judging import strategies

    graded_collection.judging_strategy = strategies.UNCERTAIN
    graded_collection.save(update_fields=["judging_strategy"])
    judge_collection(collection=graded_collection, model_dir=tiny_model)
    candidates = list(Candidate.objects.filter(collection=graded_collection))
    by_query: dict[int, list] = {}
    for candidate in candidates:
        entry = candidate.sources[MACHINE_SOURCE]
        assert len(entry["probs"]) == 4 and abs(sum(entry["probs"]) - 1) < 1e-5
        by_query.setdefault(candidate.query_id, []).append(entry)
    for entries in by_query.values():  # a ranking per query: 1..n, best score first
        assert sorted(e["rank"] for e in entries) == list(range(1, len(entries) + 1))
        ranked = sorted(entries, key=lambda e: e["rank"])
        assert all(a["score"] >= b["score"] for a, b in zip(ranked, ranked[1:]))
    # ... and the order was recomputed from them: each pair's priority is the strategy's.
    assert all(c.priority is not None for c in candidates)
    doubt = {c.pk: 1 - max(c.sources[MACHINE_SOURCE]["probs"]) for c in candidates}
    ungraded = [c for c in candidates if not Judgment.objects.people_grades().filter(candidate=c).exists()]
    for a in ungraded:
        for b in ungraded:
            if a.query_id == b.query_id and doubt[a.pk] > doubt[b.pk] + 1e-5:
                assert a.priority < b.priority


def test_too_few_grades_for_the_text_means_no_text_features_are_computed(graded_collection, tiny_model, monkeypatch):
    import training.machine_judge as machine_judge

    def refuse(*args, **kwargs):
        raise AssertionError("text features computed for a calibration that cannot use them")

    monkeypatch.setattr(machine_judge, "_text_features", refuse)
    result = judge_collection(collection=graded_collection, model_dir=tiny_model)  # 60 grades on 12 queries
    assert result.calibration == SCORE_ONLY and result.added == 80


def test_too_few_peoples_grades_means_no_judge(graded_collection, tiny_model):
    Judgment.objects.filter(candidate__query__split="train").exclude(
        pk__in=Judgment.objects.filter(candidate__query__split="train").values("pk")[:MIN_CALIBRATION_GRADES - 1]).delete()
    result = judge_collection(collection=graded_collection, model_dir=tiny_model)
    assert result.skipped_reason.startswith(f"{MIN_CALIBRATION_GRADES - 1} people's grades on train queries")
    assert not Judgment.objects.filter(source=MACHINE_SOURCE).exists()


def test_the_quality_page_shows_the_judges_kappa_with_people_as_sklearn_computes_it(graded_collection, tiny_model,
                                                                                      client, staff_user):
    from annotate.quality.report import store_report

    second = get_user_model().objects.create_user("second")
    rng = np.random.default_rng(2)
    for candidate in Candidate.objects.filter(collection=graded_collection)[:40]:
        Judgment.objects.create(collection=graded_collection, candidate=candidate, annotator=second,
                                grade=int(rng.integers(0, 4)))
    judge_collection(collection=graded_collection, model_dir=tiny_model)
    machine = dict(Judgment.objects.filter(source=MACHINE_SOURCE).values_list("candidate_id", "grade"))
    people = list(Judgment.objects.people_grades().filter(collection=graded_collection).values_list("candidate_id", "grade"))
    expected = cohen_kappa_score([g for _, g in people], [machine[c] for c, _ in people])
    expected_linear = cohen_kappa_score([g for _, g in people], [machine[c] for c, _ in people], weights="linear")

    report = store_report(collection=graded_collection, bootstrap=20)
    entry = next(s for s in report.overall["annotator_model"]["sources"] if s["source"] == MACHINE_SOURCE)
    assert entry["pairs_with_people"] == len(people) == 120
    assert abs(entry["kappa_with_people"] - expected) < 1e-9
    assert abs(entry["kappa_linear_with_people"] - expected_linear) < 1e-9
    client.force_login(staff_user)
    html = client.get(f"/c/{graded_collection.slug}/quality/").content.decode()
    assert f'data-source="{MACHINE_SOURCE}"' in html and f"{expected:.3f}" in html


def test_with_enough_grades_the_judge_reads_how_much_of_the_query_a_document_meets(db, tiny_model):
    """40 train and 8 dev queries of 6 documents; a document's grade is how many of its query's
    words it holds (a rule the tiny model's score does not know): the judge's calibration takes the
    text, and its grades on the dev queries, which did not calibrate it, are the people's."""
    collection = Collection.objects.create(slug="mj-text", name="MJ text")
    person = get_user_model().objects.create_user("grader")
    rng = np.random.default_rng(3)
    dev_grades = {}
    for split, n in (("train", 40), ("dev", 8)):
        for q, text in enumerate(query_texts(split, n)):
            query = Query.objects.create(collection=collection, external_id=f"{split}{q}", text=text)
            words = text.split()
            for d in range(6):
                grade = int(rng.integers(0, 4))
                body = list(rng.choice(FILLER, 5)) + words[:grade]
                rng.shuffle(body)
                doc = Document.objects.create(collection=collection, external_id=f"{split}{q}-{d}", text=" ".join(body))
                candidate = Candidate.objects.create(collection=collection, query=query, document=doc)
                Judgment.objects.create(collection=collection, candidate=candidate, annotator=person, grade=grade)
                if split == "dev":
                    dev_grades[candidate.pk] = grade
    result = judge_collection(collection=collection, model_dir=tiny_model)
    assert result.calibration_grades == 240 and result.calibration == SCORE_AND_TEXT
    assert result.held_out_log_loss[SCORE_AND_TEXT] < result.held_out_log_loss[SCORE_ONLY]
    machine = dict(Judgment.objects.filter(source=MACHINE_SOURCE).values_list("candidate_id", "grade"))
    pks = sorted(dev_grades)
    assert cohen_kappa_score([dev_grades[pk] for pk in pks], [machine[pk] for pk in pks]) > 0.8
