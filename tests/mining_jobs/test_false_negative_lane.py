"""The false-negative lane end to end: what the margin drops is mined anyway, tagged for staff,
judged blind like any other candidate, and staff see how many turned out relevant."""
import json

import pytest
from django.contrib.auth import get_user_model

from annotate.judging.false_negatives import false_negative_lane
from annotate.models import Candidate, GuidelineAcknowledgement, Membership
from mining.services import run_job_inline, start_mining

pytestmark = pytest.mark.django_db


def test_candidates_the_margin_drops_are_kept_judged_blind_and_counted_for_staff(tiny_collection, client):
    collection = tiny_collection
    job = run_job_inline(start_mining(collection=collection, method="bm25", negatives=2, enqueue=False,
                                      params={"margin": 0.3, "dedup": None, "lane": 2}))
    assert job.status == "done" and job.params["lane"] == 2
    lane = set(Candidate.objects.filter(collection=collection, guard="margin").values_list("pk", flat=True))
    assert lane, "the margin dropped nothing on the tiny collection"
    assert not Candidate.objects.filter(collection=collection).exclude(guard__in=["", "margin"]).exists()

    annotator = get_user_model().objects.create_user("judge", password="pw-123456789")
    Membership.objects.create(collection=collection, user=annotator)
    GuidelineAcknowledgement.objects.create(user=annotator, version=collection.guideline_version)
    client.force_login(annotator)
    seen_lane = 0
    while (response := client.post(f"/api/collections/{collection.slug}/tasks/next/")).status_code == 200:
        task = response.json()
        body = json.dumps(task)
        assert "guard" not in body and "margin" not in body  # never marked for annotators
        shapes = {tuple(sorted(candidate)) for candidate in task["candidates"]}
        assert len(shapes) == 1  # a lane candidate looks like any other
        for candidate in task["candidates"]:
            in_lane = candidate["id"] in lane
            seen_lane += in_lane
            graded = client.post(f"/api/tasks/{task['task']}/judgments/", {
                "candidate": candidate["id"], "grade": 3 if in_lane else 0, "idempotency_key": f"g{candidate['id']}",
            }, content_type="application/json")
            assert graded.status_code == 200, graded.content
        assert client.post(f"/api/tasks/{task['task']}/finish/").status_code == 200
    assert response.status_code == 204 and seen_lane == len(lane)

    figures = false_negative_lane(collection)
    assert figures["guards"]["margin"] == {"tagged": len(lane), "judged": len(lane), "relevant": len(lane),
                                           "relevant_share": 1.0}
    assert figures["all"]["tagged"] == len(lane)
