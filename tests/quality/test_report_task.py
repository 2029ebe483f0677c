"""The debounced report: counted per new judgment in Redis, one queued and one running per collection."""
from __future__ import annotations

import time

import pytest
import redis as redis_lib

from annotate.judging import assignment
from annotate.judging import services as judging
from annotate.models import AgreementReport, Candidate, GuidelineAcknowledgement
from annotate.quality import tasks as quality_tasks
from annotate.quality import triggers

from ..conftest import wait_for
from .conftest import add_judgments, build_collection, people


@pytest.fixture
def clean_redis(redis_url, settings):
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    triggers._quiet_until = 0.0
    yield client
    client.flushdb()


def queued_messages(client) -> int:
    return client.llen("default")


@pytest.mark.django_db
def test_one_report_task_is_queued_per_n_new_judgments(clean_redis):
    collection = build_collection(slug="deb", agreement_every=5)
    results = [quality_tasks.maybe_schedule_report(collection.pk, every=5) for _ in range(12)]
    assert results.count(True) == 1 and results[4] is True  # the 5th; then one is queued: no second
    assert queued_messages(clean_redis) == 1
    triggers.clear_queued(collection.pk)  # the task ran; 7 judgments came in meanwhile
    assert quality_tasks.maybe_schedule_report(collection.pk, every=5) is True  # the 8th: over N again
    triggers.clear_queued(collection.pk)
    # N read from the collection row when not given
    assert [quality_tasks.maybe_schedule_report(collection.pk) for _ in range(5)] == [False] * 4 + [True]
    assert queued_messages(clean_redis) == 3


@pytest.mark.django_db
def test_the_task_keeps_a_report_and_a_repeat_is_a_no_op(clean_redis):
    collection = build_collection(slug="run", agreement_every=3)
    users = people(collection, ["a", "b"])
    pks = list(Candidate.objects.filter(collection=collection).values_list("pk", flat=True))
    for user in users.values():
        add_judgments(collection, user, {pk: pk % 4 for pk in pks})
    assert quality_tasks.run_report(collection.pk) == "stored"
    assert quality_tasks.run_report(collection.pk) == "fresh"  # redelivered message: nothing new
    assert quality_tasks.run_report(collection.pk, min_new=0) == "stored"
    report = AgreementReport.objects.filter(collection=collection).first()
    assert report.n_judgments == 2 * len(pks) and report.overall["krippendorff_alpha_ordinal"] == pytest.approx(1.0)
    assert AgreementReport.objects.filter(collection=collection).count() == 2


@pytest.mark.django_db
def test_one_at_a_time_a_busy_run_asks_for_another(clean_redis):
    collection = build_collection(slug="busy")
    add_judgments(collection, people(collection, ["a"])["a"], {Candidate.objects.first().pk: 1})
    with triggers.report_lock(collection.pk):
        assert quality_tasks.run_report(collection.pk) == "busy"
    assert not AgreementReport.objects.exists()
    assert quality_tasks.run_report(collection.pk) == "stored"
    # the busy run left a request for one more run, which the finished run queued
    assert queued_messages(clean_redis) == 1


@pytest.mark.django_db
def test_redis_down_never_fails_a_grade_and_costs_little(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    triggers._quiet_until = 0.0
    collection = build_collection(slug="down")
    started = time.perf_counter()
    assert quality_tasks.maybe_schedule_report(collection.pk, every=1) is False
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(100):
        assert quality_tasks.maybe_schedule_report(collection.pk, every=1) is False
    quiet = (time.perf_counter() - started) / 100
    assert first < 1.0 and quiet < 0.001  # after one failure it stays quiet instead of waiting again
    triggers._quiet_until = 0.0


@pytest.mark.django_db
def test_counting_a_judgment_is_cheap(clean_redis):
    collection = build_collection(slug="cheap")
    quality_tasks.maybe_schedule_report(collection.pk, every=10**9)  # connect
    started = time.perf_counter()
    for _ in range(200):
        quality_tasks.maybe_schedule_report(collection.pk, every=10**9)
    assert (time.perf_counter() - started) / 200 < 0.005  # typically ~0.1 ms on a local Redis


@pytest.mark.celery
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_keeps_a_report_after_every_n_grades(celery_worker_process, clean_redis):
    collection = build_collection(slug="live", queries=2, candidates=3, k=2, agreement_every=4)
    users = list(people(collection, ["w0", "w1"]).values())
    for user in users:
        GuidelineAcknowledgement.objects.create(user=user, version=collection.guideline_version)
    graded = 0
    for user in users:
        while (lease := assignment.next_task(collection=collection, annotator=user)) is not None:
            for pk in lease.items:
                judging.record_judgment(annotator=user, candidate=Candidate.objects.get(pk=pk), grade=pk % 4,
                                        idempotency_key=f"{user.pk}:{pk}")
                graded += 1
            assignment.finish_task(lease=lease)
    assert graded == 12
    report = wait_for(lambda: AgreementReport.objects.filter(collection=collection, n_judgments__gte=4).first(),
                      timeout=60, message="a report from the worker")
    assert report.per_annotator and report.overall["n_judgments"] == report.n_judgments
    wait_for(lambda: not clean_redis.exists(triggers.key(collection.pk, "queued"))
             and not clean_redis.exists(triggers.key(collection.pk, "lock")), timeout=60, message="the run to end")
    # 12 grades at N=4: the reports never ran two at a time and the last one saw every grade
    wait_for(lambda: AgreementReport.objects.filter(collection=collection).first().n_judgments == 12
             or clean_redis.get(triggers.key(collection.pk, "new")) not in (None, b"0"),
             timeout=30, message="the last report")
    assert "recompute_report" in celery_worker_process.output()
