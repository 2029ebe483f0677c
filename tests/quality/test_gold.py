"""Gold candidates: marked by staff or imported, mixed into tasks blind, exempt from overlap k, scored."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate.judging import assignment
from annotate.judging import selectors as workbench
from annotate.judging import services as judging
from annotate.models import Candidate
from annotate.quality.gold import mark_gold
from annotate.quality.report import compute_report

from .conftest import build_collection, people

pytestmark = pytest.mark.django_db

HIDDEN_KEYS = {"is_gold", "gold_grade", "sources", "rank", "score", "annotator", "coverage"}


def all_keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from all_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from all_keys(inner)


def gold_collection(*, rate=0.5, k=2, queries=3, candidates=6, gold_per_query=2):
    collection = build_collection(slug="gold", queries=queries, candidates=candidates, k=k, gold_rate=rate)
    for query in collection.queries.all():
        pks = list(query.candidates.order_by("pk").values_list("pk", flat=True))[:gold_per_query]
        mark_gold(candidates=pks, grade=2)
    return collection


def judge_everything(collection, users):
    """Each annotator takes tasks until none is left, grading every candidate 2 (and finishing)."""
    leases = []
    for user in users:
        while (lease := assignment.next_task(collection=collection, annotator=user)) is not None:
            leases.append(lease)
            for pk in lease.items:
                judging.record_judgment(annotator=user, candidate=Candidate.objects.get(pk=pk), grade=2,
                                        idempotency_key=f"{user.pk}-{pk}")
            assignment.finish_task(lease=lease)
    return leases


def test_gold_is_mixed_in_at_the_rate_and_looks_like_any_candidate():
    collection = gold_collection(rate=0.5, k=2)
    users = list(people(collection, [f"a{i}" for i in range(4)]).values())
    lease = assignment.next_task(collection=collection, annotator=users[0])
    gold = set(Candidate.objects.filter(query=lease.query, is_gold=True).values_list("pk", flat=True))
    ordinary = [pk for pk in lease.items if pk not in gold]
    assert len(ordinary) == 4
    # rate 0.5 with 4 ordinary candidates: 4 gold wanted, the query has 2
    assert gold <= set(lease.items)
    payload = workbench.task_payload(lease)
    assert not set(all_keys(payload)) & HIDDEN_KEYS
    assert {row["id"] for row in payload["candidates"]} == set(lease.items)


def test_gold_count_follows_the_rate_on_average():
    collection = build_collection(slug="rate", queries=40, candidates=10, k=1, gold_rate=0.2)
    for query in collection.queries.all():  # plenty of gold: 5 gold + 5 ordinary candidates per query
        mark_gold(candidates=list(query.candidates.order_by("pk").values_list("pk", flat=True))[:5], grade=1)
    user = list(people(collection, ["solo"]).values())[0]
    gold_given = ordinary_given = 0
    while (lease := assignment.next_task(collection=collection, annotator=user)) is not None:
        gold = set(Candidate.objects.filter(pk__in=lease.items, is_gold=True).values_list("pk", flat=True))
        gold_given += len(gold)
        ordinary_given += len(lease.items) - len(gold)
        for cid in lease.items:  # judged and finished: the query is done for this annotator
            judging.record_judgment(annotator=user, candidate=Candidate(pk=cid, query_id=lease.query_id,
                                    collection_id=lease.collection_id), grade=1, idempotency_key=f"g{cid}")
        assignment.finish_task(lease=lease)
    # expected gold per task: 0.2 * 5 / 0.8 = 1.25 -> 1 or 2 (share 0.2 of what is judged on average)
    assert ordinary_given == 200
    assert 0.15 <= gold_given / (gold_given + ordinary_given) <= 0.25


def test_gold_is_exempt_from_overlap_k_and_never_counts_as_coverage():
    collection = gold_collection(rate=0.5, k=2)
    users = list(people(collection, [f"a{i}" for i in range(4)]).values())
    judge_everything(collection, users)
    gold = Candidate.objects.filter(collection=collection, is_gold=True)
    ordinary = Candidate.objects.filter(collection=collection, is_gold=False)
    # every ordinary candidate got exactly k judges; gold was judged by everyone who took its query
    assert set(ordinary.values_list("coverage", flat=True)) == {2}
    assert all(c.judgments.count() == 2 for c in ordinary)
    assert set(gold.values_list("coverage", flat=True)) == {0}
    assert all(c.judgments.count() == 2 for c in gold)
    report = assignment.coverage_report(collection)
    assert report["over_judged"] == 0 and report["coverage_violations"] == 0 and report["duplicates"] == 0


def test_a_query_of_gold_only_is_never_handed_out():
    collection = build_collection(slug="allgold", queries=1, candidates=3, k=2, gold_rate=0.5)
    mark_gold(candidates=Candidate.objects.filter(collection=collection), grade=3)
    user = list(people(collection, ["x"]).values())[0]
    assert assignment.next_task(collection=collection, annotator=user) is None


def test_no_gold_in_tasks_at_rate_zero():
    collection = gold_collection(rate=0.0)
    user = list(people(collection, ["z"]).values())[0]
    lease = assignment.next_task(collection=collection, annotator=user)
    assert not Candidate.objects.filter(pk__in=lease.items, is_gold=True).exists()


def test_gold_judgments_are_scored_with_partial_credit():
    collection = gold_collection(rate=0.5, k=2)
    users = list(people(collection, ["a0", "a1"]).values())
    judge_everything(collection, users)  # everyone grades 2; gold grade is 2
    Candidate.objects.filter(collection=collection, is_gold=True, query__external_id="q0").update(gold_grade=3)
    data = compute_report(collection, bootstrap=0)
    for entry in data["per_annotator"]:
        assert entry["gold_items"] == 6
        assert entry["gold_accuracy"] == pytest.approx((4 * 1.0 + 2 * 0.5) / 6)
    assert data["overall"]["gold"]["judgments"] == 12


def test_import_gold_from_csv_and_jsonl(tmp_path):
    collection = build_collection(slug="imp", queries=2, candidates=2)
    csv_file = tmp_path / "gold.csv"
    csv_file.write_text("query_id,doc_id,grade\nq0,q0-d0,3\nq1,q1-d1,0\n")
    out = StringIO()
    call_command("import_gold", "imp", str(csv_file), "--json", stdout=out)
    assert json.loads(out.getvalue().splitlines()[-1]) == {"collection": "imp", "marked": 2, "lines": 2}
    jsonl = tmp_path / "gold.jsonl"
    jsonl.write_text('{"query_id": "q0", "doc_id": "q0-d1", "grade": 1}\n')
    call_command("import_gold", "imp", str(jsonl), stdout=StringIO())
    marked = dict(Candidate.objects.filter(collection=collection, is_gold=True)
                  .values_list("document__external_id", "gold_grade"))
    assert marked == {"q0-d0": 3, "q1-d1": 0, "q0-d1": 1}


@pytest.mark.parametrize("content, message", [
    ("query_id,doc_id,grade\nq0,q0-d0,3\nq0,q0-d9,2\n", "gold.txt:3: (q0, q0-d9) is not a candidate of imp"),
    ("query_id,doc_id,grade\nq0,q0-d0,4\n", "gold.txt:2: grade 4 is outside 0..3"),
    ("query_id,doc_id,grade\nq0,q0-d0,x\n", "gold.txt:2: grade 'x' is not an integer"),
    ("query,doc,grade\n", "gold.txt:1: header is 'query,doc,grade'"),
    ("query_id,doc_id,grade\nq0,q0-d0,1\nq0,q0-d0,2\n", "gold.txt:3: pair (q0, q0-d0) repeated, first on line 2"),
    ('{"query_id": "q0", "doc_id": "q0-d0", "grade": 1}\n{"query_id": "q0"\n', "gold.txt:2: not valid JSON"),
    ('{"query_id": "q0", "doc_id": "q0-d0"}\n', "gold.txt:1: missing 'grade'"),
])
def test_a_bad_gold_file_is_refused_with_its_line_and_nothing_is_marked(tmp_path, content, message):
    build_collection(slug="imp", queries=2, candidates=2)
    path = tmp_path / "gold.txt"
    path.write_text(content)
    with pytest.raises(CommandError) as failure:
        call_command("import_gold", "imp", str(path), stdout=StringIO())
    assert message in str(failure.value)
    assert not Candidate.objects.filter(is_gold=True).exists()


def test_staff_mark_gold_through_the_api_and_annotators_cannot(client, staff_user):
    collection = build_collection(slug="api", queries=1, candidates=2)
    member = list(people(collection, ["m"]).values())[0]
    body = {"items": [{"query_id": "q0", "doc_id": "q0-d0", "grade": 3}]}
    client.force_login(member)
    assert client.post("/api/collections/api/gold/", body, content_type="application/json").status_code == 403
    client.force_login(staff_user)
    response = client.post("/api/collections/api/gold/", body, content_type="application/json")
    assert response.status_code == 200 and response.json() == {"marked": 1, "unmarked": 0}
    assert Candidate.objects.get(document__external_id="q0-d0").gold_grade == 3
    bad = client.post("/api/collections/api/gold/", {"items": [{"query_id": "q0", "doc_id": "nope", "grade": 1}]},
                      content_type="application/json")
    assert bad.status_code == 400 and "items[0]: (q0, nope) is not a candidate of api" in bad.json()["detail"]
    undo = client.post("/api/collections/api/gold/", {"items": [{"query_id": "q0", "doc_id": "q0-d0", "grade": None}]},
                       content_type="application/json")
    assert undo.json() == {"marked": 0, "unmarked": 1}
    assert not Candidate.objects.filter(is_gold=True).exists()


def test_admin_action_marks_gold(admin_client):
    collection = build_collection(slug="adm", queries=1, candidates=2)
    pks = list(Candidate.objects.filter(collection=collection).values_list("pk", flat=True))
    response = admin_client.post("/admin/annotate/candidate/", {"action": "mark_gold_1", "_selected_action": pks})
    assert response.status_code == 302
    assert set(Candidate.objects.values_list("is_gold", "gold_grade")) == {(True, 1)}
