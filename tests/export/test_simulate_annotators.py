"""simulate_annotators: deterministic, noise as asked, marked simulated, idempotent."""
from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from annotate.models import AnnotatorProfile, Judgment, JudgmentRevision, Membership
from annotate.simulation import SimulationError, SimulationParams, simulate_annotators


def simulated_grades(collection) -> dict:
    return {(j.candidate_id, j.annotator.username): j.grade
            for j in Judgment.objects.filter(collection=collection, annotator__isnull=False).select_related("annotator")}


def reference(collection) -> dict:
    return dict(Judgment.objects.filter(collection=collection, annotator__isnull=True).values_list("candidate_id", "grade"))


def test_simulated_annotators_are_users_marked_simulated_and_members(graded_collection):
    collection = graded_collection()
    call_command("simulate_annotators", "small", "--annotators", "3", "--noise", "0.2", "--seed", "4", verbosity=0)
    profiles = AnnotatorProfile.objects.filter(user__username__startswith="sim-small-").select_related("user")
    assert sorted(p.user.username for p in profiles) == ["sim-small-1", "sim-small-2", "sim-small-3"]
    assert all(p.is_simulated and p.simulation["noise"] == 0.2 and p.simulation["seed"] == 4 for p in profiles)
    assert all(not p.user.has_usable_password() for p in profiles)
    assert Membership.objects.filter(collection=collection, user__in=[p.user for p in profiles]).count() == 3


def test_every_reference_graded_candidate_gets_one_judgment_per_annotator_with_a_revision(graded_collection):
    collection = graded_collection()
    collection.guideline_version = "v7"
    collection.save()
    simulate_annotators(collection=collection, params=SimulationParams(annotators=2, noise=0.3, seed=1))
    judgments = Judgment.objects.filter(collection=collection, annotator__isnull=False)
    assert judgments.count() == 2 * len(reference(collection))
    assert set(judgments.values_list("guideline_version", flat=True)) == {"v7"}
    revisions = JudgmentRevision.objects.filter(judgment__in=judgments)
    assert revisions.count() == judgments.count()
    assert all(r.new_grade == r.judgment.grade and r.changed_by_id == r.judgment.annotator_id
               for r in revisions.select_related("judgment"))


def test_the_same_seed_gives_the_same_grades_in_another_collection(graded_collection):
    first = graded_collection("first")
    second = graded_collection("second")
    for collection in (first, second):
        simulate_annotators(collection=collection, params=SimulationParams(annotators=3, noise=0.4, seed=9))
    by_pair = []
    for collection in (first, second):
        rows = Judgment.objects.filter(collection=collection, annotator__isnull=False).values_list(
            "candidate__query__external_id", "candidate__document__external_id", "annotator__username", "grade")
        by_pair.append({(q, d, user.rsplit("-", 1)[1]): grade for q, d, user, grade in rows})
    assert by_pair[0] == by_pair[1]
    other_seed = graded_collection("third")
    simulate_annotators(collection=other_seed, params=SimulationParams(annotators=3, noise=0.4, seed=10))
    rows = Judgment.objects.filter(collection=other_seed, annotator__isnull=False).values_list(
        "candidate__query__external_id", "candidate__document__external_id", "annotator__username", "grade")
    assert {(q, d, u.rsplit("-", 1)[1]): g for q, d, u, g in rows} != by_pair[0]


def test_running_twice_adds_nothing_and_more_annotators_adds_only_theirs(graded_collection):
    collection = graded_collection()
    params = SimulationParams(annotators=2, noise=0.2, seed=3)
    simulate_annotators(collection=collection, params=params)
    before = simulated_grades(collection)
    again = simulate_annotators(collection=collection, params=params)
    assert again.judgments_added == 0 and again.created_annotators == 0
    assert simulated_grades(collection) == before
    more = simulate_annotators(collection=collection, params=SimulationParams(annotators=3, noise=0.2, seed=3))
    assert more.created_annotators == 1 and more.judgments_added == len(reference(collection))
    assert {k: v for k, v in simulated_grades(collection).items() if k[1] != "sim-small-3"} == before


def test_changing_the_noise_of_existing_simulated_annotators_is_refused(graded_collection):
    collection = graded_collection()
    call_command("simulate_annotators", "small", "--annotators", "2", "--noise", "0.2", verbosity=0)
    with pytest.raises(CommandError, match=r"sim-small-1.*noise=0.2.*noise=0.5"):
        call_command("simulate_annotators", "small", "--annotators", "2", "--noise", "0.5", verbosity=0)
    with pytest.raises(SimulationError, match="noise must be within 0..1"):
        simulate_annotators(collection=collection, params=SimulationParams(annotators=1, noise=1.5))
    with pytest.raises(CommandError, match="no collection 'missing'"):
        call_command("simulate_annotators", "missing", "--annotators", "1", "--noise", "0.1", verbosity=0)


def test_error_rate_matches_the_noise_and_errors_are_neighbours_unless_random(graded_collection):
    collection = graded_collection(queries=40, docs_per_query=25)
    truth = reference(collection)
    simulate_annotators(collection=collection, params=SimulationParams(annotators=3, noise=0.3, seed=11))
    grades = simulated_grades(collection)
    errors = [(truth[c], g) for (c, _), g in grades.items() if g != truth[c]]
    assert abs(len(errors) / len(grades) - 0.3) < 0.04  # 3000 draws: about 5 standard deviations
    assert all(abs(r - g) == 1 for r, g in errors)
    # Both neighbours of an inner grade are used about equally.
    up = sum(1 for r, g in errors if r in (1, 2) and g == r + 1)
    down = sum(1 for r, g in errors if r in (1, 2) and g == r - 1)
    assert abs(up - down) < 0.25 * (up + down)


def test_random_errors_spread_over_the_other_grades(graded_collection):
    collection = graded_collection("rnd", queries=40, docs_per_query=25)
    truth = reference(collection)
    simulate_annotators(collection=collection, params=SimulationParams(annotators=3, noise=0.5, seed=2, random_share=1.0))
    errors = [(truth[c], g) for (c, _), g in simulated_grades(collection).items() if g != truth[c]]
    assert abs(len(errors) / 3000 - 0.5) < 0.05
    from_zero = Counter(g for r, g in errors if r == 0)
    total = sum(from_zero.values())
    assert set(from_zero) == {1, 2, 3} and all(abs(n / total - 1 / 3) < 0.1 for n in from_zero.values())
