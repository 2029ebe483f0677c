"""simulate_annotators --profiles / --overlap: each profile grades by its rule, K judgments per
candidate, deterministic, idempotent, and bad values refused naming the flag."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace

import pytest
from django.core.management import CommandError, call_command

from annotate.models import AnnotatorProfile, Judgment
from annotate.simulation import SimulationParams, parse_profiles, simulate_annotators

PANEL = "honest,plus1,minus1,random,constant,constant:2,newcomer:0.2"


def reference(collection) -> dict:
    return dict(Judgment.objects.filter(collection=collection, annotator__isnull=True).values_list("candidate_id", "grade"))


def grades_by_annotator(collection) -> dict[str, dict[int, int]]:
    by_annotator = defaultdict(dict)
    for candidate, username, grade in Judgment.objects.filter(collection=collection, annotator__isnull=False) \
            .values_list("candidate_id", "annotator__username", "grade"):
        by_annotator[username][candidate] = grade
    return by_annotator


def named_judgments(collection) -> dict:
    rows = Judgment.objects.filter(collection=collection, annotator__isnull=False).values_list(
        "candidate__query__external_id", "candidate__document__external_id", "annotator__username", "grade")
    return {(q, d, user.rsplit("-", 1)[1]): grade for q, d, user, grade in rows}


def test_each_profile_grades_by_its_rule(graded_collection):
    collection = graded_collection(queries=40, docs_per_query=25)
    truth = reference(collection)
    call_command("simulate_annotators", "small", "--profiles", PANEL, "--noise", "0", "--seed", "5", verbosity=0)
    sim = grades_by_annotator(collection)
    honest, plus1, minus1, spammer, zero, two, newcomer = (sim[f"sim-small-{i}"] for i in range(1, 8))
    assert honest == truth  # noise 0: the reference itself
    assert plus1 == {c: min(g + 1, 3) for c, g in truth.items()}
    assert minus1 == {c: max(g - 1, 0) for c, g in truth.items()}
    assert zero == dict.fromkeys(truth, 0) and two == dict.fromkeys(truth, 2)
    # random: every grade about a quarter of the time, whatever the reference (1000 pairs).
    assert set(spammer) == set(truth)
    counts = Counter(spammer.values())
    assert all(abs(counts[g] / 1000 - 0.25) < 0.05 for g in range(4))
    assert abs(sum(spammer[c] == g for c, g in truth.items()) / 1000 - 0.25) < 0.05
    # newcomer: honest on the about 20% of pairs it judges.
    assert abs(len(newcomer) / 1000 - 0.2) < 0.04
    assert all(truth[c] == g for c, g in newcomer.items())


def test_honest_profile_uses_the_noise_and_every_profile_is_stored(graded_collection):
    collection = graded_collection(queries=40, docs_per_query=25)
    truth = reference(collection)
    call_command("simulate_annotators", "small", "--profiles", "honest,constant,newcomer", "--noise", "0.3",
                 "--seed", "2", verbosity=0)
    honest = grades_by_annotator(collection)["sim-small-1"]
    assert abs(sum(g != truth[c] for c, g in honest.items()) / 1000 - 0.3) < 0.05
    stored = dict(AnnotatorProfile.objects.filter(user__username__startswith="sim-small-")
                  .values_list("user__username", "simulation__profile"))
    assert stored == {"sim-small-1": "honest", "sim-small-2": "constant:0", "sim-small-3": "newcomer:0.05"}


@pytest.mark.parametrize("overlap", [1, 3])
def test_overlap_gives_exactly_k_judgments_per_candidate_from_varying_annotators(graded_collection, overlap):
    collection = graded_collection(queries=20, docs_per_query=25)
    call_command("simulate_annotators", "small", "--profiles", "honest,honest,plus1,random,constant",
                 "--noise", "0.2", "--overlap", str(overlap), "--seed", "1", verbosity=0)
    judges = defaultdict(set)
    for candidate, annotator in Judgment.objects.filter(collection=collection, annotator__isnull=False) \
            .values_list("candidate_id", "annotator_id"):
        judges[candidate].add(annotator)
    assert set(judges) == set(reference(collection))
    assert {len(panel) for panel in judges.values()} == {overlap}
    # A uniformly random subset: each annotator gets about K/5 of the 500 candidates, and many subsets occur.
    load = Counter(a for panel in judges.values() for a in panel)
    assert all(abs(n / 500 - overlap / 5) < 0.07 for n in load.values()) and len(load) == 5
    assert len({frozenset(panel) for panel in judges.values()}) == (5 if overlap == 1 else 10)


def test_same_seed_same_judgments_in_another_collection_and_another_seed_differs(graded_collection):
    params = SimulationParams(annotators=4, noise=0.3, seed=7, profiles=parse_profiles("honest,random,newcomer:0.5,plus1"),
                              overlap=2)
    judged = []
    for slug in ("first", "second"):
        collection = graded_collection(slug)
        simulate_annotators(collection=collection, params=params)
        judged.append(named_judgments(collection))
    assert judged[0] == judged[1] and judged[0]
    third = graded_collection("third")
    simulate_annotators(collection=third, params=replace(params, seed=8))
    assert named_judgments(third) != judged[0]


def test_running_twice_adds_nothing_and_a_changed_profile_or_panel_is_refused(graded_collection):
    collection = graded_collection()
    args = ["simulate_annotators", "small", "--profiles", "honest,plus1,constant:1", "--noise", "0.2", "--overlap", "2"]
    call_command(*args, verbosity=0)
    before = named_judgments(collection)
    again = simulate_annotators(collection=collection, params=SimulationParams(
        annotators=3, noise=0.2, profiles=parse_profiles("honest,plus1,constant:1"), overlap=2))
    assert again.judgments_added == 0 and again.created_annotators == 0
    with pytest.raises(CommandError, match=r"sim-small-2.*profile=plus1.*profile=minus1"):
        call_command("simulate_annotators", "small", "--profiles", "honest,minus1,constant:1", "--noise", "0.2",
                     "--overlap", "2", verbosity=0)
    with pytest.raises(CommandError, match=r"sim-small-1.*overlap=2, panel=3.*overlap=2, panel=4"):
        call_command("simulate_annotators", "small", "--profiles", "honest,plus1,constant:1,honest", "--noise", "0.2",
                     "--overlap", "2", verbosity=0)
    with pytest.raises(CommandError, match=r"sim-small-1.*overlap=2.*overlap=None"):
        call_command("simulate_annotators", "small", "--annotators", "3", "--noise", "0.2", verbosity=0)
    assert named_judgments(collection) == before


def test_annotators_from_before_profiles_existed_count_as_honest(graded_collection):
    collection = graded_collection()
    call_command("simulate_annotators", "small", "--annotators", "2", "--noise", "0.2", verbosity=0)
    for stored in AnnotatorProfile.objects.all():  # what a run before --profiles/--overlap recorded
        stored.simulation = {k: v for k, v in stored.simulation.items() if k not in ("profile", "overlap", "panel")}
        stored.save()
    before = named_judgments(collection)
    call_command("simulate_annotators", "small", "--profiles", "honest,honest,random", "--noise", "0.2", verbosity=0)
    after = named_judgments(collection)
    assert {k: v for k, v in after.items() if k[2] != "3"} == before
    assert len(after) == 3 * len(reference(collection))


@pytest.mark.parametrize("options, message", [
    (["--profiles", "honest,lazy", "--noise", "0.1"], r"--profiles: unknown profile 'lazy'"),
    (["--profiles", "constant:4"], r"--profiles: constant grade must be within 0..3"),
    (["--profiles", "constant:x"], r"--profiles: 'x' in 'constant:x' is not an integer"),
    (["--profiles", "newcomer:0", "--noise", "0.1"], r"--profiles: newcomer share must be within \(0, 1\]"),
    (["--profiles", "newcomer:1.5", "--noise", "0.1"], r"--profiles: newcomer share must be within \(0, 1\]"),
    (["--profiles", "plus1:2"], r"--profiles: profile 'plus1' takes no value"),
    (["--profiles", ""], r"--profiles: empty list"),
    (["--profiles", "honest,plus1", "--annotators", "3", "--noise", "0.1"], r"--annotators \(3\) must equal .*\(2\)"),
    (["--profiles", "honest,plus1"], r"--noise is required"),
    (["--annotators", "2", "--noise", "0.1", "--overlap", "0"], r"--overlap must be an integer from 1 to .*\(2\)"),
    (["--profiles", "plus1,random", "--overlap", "3"], r"--overlap must be an integer from 1 to .*\(2\), got 3"),
    (["--noise", "0.1"], r"--annotators or --profiles is required"),
])
def test_bad_values_are_refused_naming_the_flag_and_nothing_is_written(graded_collection, options, message):
    graded_collection()
    with pytest.raises(CommandError, match=message):
        call_command("simulate_annotators", "small", *options, verbosity=0)
    assert not Judgment.objects.filter(annotator__isnull=False).exists()
    assert not AnnotatorProfile.objects.exists()
