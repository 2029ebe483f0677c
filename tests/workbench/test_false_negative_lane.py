"""Staff's view of the false-negative lane: per guard, how many tagged pairs people judged and how
many of those most people found relevant."""
import pytest

from annotate.judging.false_negatives import false_negative_lane
from annotate.models import Candidate, Judgment

from .factories import make_annotators, make_collection

pytestmark = pytest.mark.django_db


def grade(candidate, people, grades):
    for person, value in zip(people, grades):
        Judgment.objects.create(collection=candidate.collection, candidate=candidate, annotator=person,
                                grade=value, skipped=value is None, skip_reason="unclear" if value is None else "")


def test_a_tagged_pair_is_relevant_when_more_than_half_of_its_grades_are_two_or_more():
    collection = make_collection(queries=1, candidates=7, k=3)
    people = make_annotators(collection, 3)
    pairs = list(Candidate.objects.order_by("pk"))
    tagged = {"margin": pairs[:4], "dedup": pairs[4:6]}
    for guard, candidates in tagged.items():
        Candidate.objects.filter(pk__in=[c.pk for c in candidates]).update(guard=guard)
    grade(pairs[0], people, [3, 2, 0])  # margin: majority relevant
    grade(pairs[1], people, [3, 0])  # margin: a tie is not a majority
    grade(pairs[2], people, [None, 2])  # margin: a skip is no grade: 1 of 1 relevant
    # pairs[3]: tagged, not judged yet
    grade(pairs[4], people, [1, 0, 2])  # dedup: not relevant
    grade(pairs[5], people, [None])  # dedup: skipped only, not judged
    grade(pairs[6], people, [3, 3, 3])  # an ordinary candidate: not in the lane

    figures = false_negative_lane(collection)

    assert figures["guards"] == {
        "margin": {"tagged": 4, "judged": 3, "relevant": 2, "relevant_share": round(2 / 3, 4)},
        "dedup": {"tagged": 2, "judged": 1, "relevant": 0, "relevant_share": 0.0},
    }
    assert figures["all"] == {"tagged": 6, "judged": 4, "relevant": 2, "relevant_share": 0.5}


def test_a_collection_without_a_lane_shows_nothing_to_measure():
    collection = make_collection(queries=1, candidates=2, k=1)
    assert false_negative_lane(collection)["guards"] == {}
    assert false_negative_lane(collection)["all"]["relevant_share"] is None
