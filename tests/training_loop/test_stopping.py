"""Know when to stop judging (#17 item 4): the served model's dev interval run after run, beside
the people's grades each run's snapshot held, and "enough judged" against the collection's target."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate.models import Collection
from training.models import RetrainPolicy
from training.stopping import enough_judged, stopping_rows

from .test_run_page import finished_run, metrics_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def collection():
    return Collection.objects.create(slug="stop", name="Stop")


def _run(collection, *, dev: int, judgments: int, promoted: bool):
    metrics = metrics_now(dev=dev, gain=0.2 if promoted else 0.0)
    metrics["decision"]["promoted"] = promoted
    run = finished_run(collection, metrics, promoted=promoted, with_model=False)
    run.snapshot.n_judgments = judgments
    run.snapshot.save(update_fields=["n_judgments"])
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at"])
    return run


def test_the_intervals_narrow_as_the_dev_set_grows_and_the_target_says_when_to_stop(collection, client, staff_user):
    first = _run(collection, dev=6, judgments=300, promoted=True)
    second = _run(collection, dev=60, judgments=3000, promoted=True)
    rows = stopping_rows(collection)
    assert [r.run_id for r in rows] == [first.pk, second.pk]           # oldest first
    assert [r.judgments for r in rows] == [300, 3000] and rows[0].served == "fusion"
    assert rows[1].served_width < rows[0].served_width                  # ten times the queries: narrower
    assert rows[1].bm25_width < rows[0].bm25_width
    assert enough_judged(rows, None) is None
    assert enough_judged(rows, rows[1].served_width + 1e-9) is True
    assert enough_judged(rows, rows[1].served_width / 2) is False

    client.force_login(staff_user)
    url = reverse("training-runs", args=["stop"])
    html = client.get(url).content.decode()
    assert 'id="when-to-stop"' in html and f'data-run="{first.pk}"' in html and 'data-field="enough"' not in html
    schedule = reverse("retrain-schedule", args=["stop"])
    form = {"enabled": "", "every_hours": "24", "min_new_judgments": "10", "promotion_margin": "0.005",
            "train_params": "{}", "export_params": "{}"}
    client.post(schedule, {**form, "stop_width": f"{rows[1].served_width + 0.001:.4f}"})
    assert RetrainPolicy.objects.get(collection=collection).stop_width == pytest.approx(rows[1].served_width + 0.001,
                                                                                         abs=1e-4)
    assert "Enough judged" in client.get(url).content.decode()


@pytest.mark.parametrize("value", ["0", "2", "wide"])
def test_a_bad_target_width_is_refused_and_nothing_changes(collection, client, staff_user, value):
    client.force_login(staff_user)
    response = client.post(reverse("retrain-schedule", args=["stop"]), {
        "enabled": "", "every_hours": "24", "min_new_judgments": "10", "promotion_margin": "0.005",
        "train_params": "{}", "export_params": "{}", "stop_width": value})
    assert response.status_code == 200 and not RetrainPolicy.objects.filter(collection=collection).exists()
    assert "Target interval width" in response.content.decode()


def test_an_older_run_without_candidates_is_left_out(collection):
    from .test_run_page import metrics_before

    finished_run(collection, metrics_before(promoted=False), with_model=False)
    assert stopping_rows(collection) == []
