"""Judging strategies (#17 item 3): which pairs people get first, in plain Python and as assignment
hands them out on the database -- with k judges per candidate and the leases as before."""
from __future__ import annotations

import pytest

from annotate.judging import assignment, priorities, strategies
from annotate.judging import services as judging
from annotate.judging.strategies import Pair
from annotate.models import Candidate, Collection, Judgment, Query

from .factories import make_annotators, make_collection


# ---- the strategies, pure ----

def test_pooled_orders_a_query_by_its_fused_rank_over_every_ranked_list():
    pairs = [Pair("a", {"bm25": 3, "dense": 3}), Pair("b", {"bm25": 1}), Pair("c", {"bm25": 2, "dense": 1}),
             Pair("d", {})]
    order = strategies.priorities(strategies.POOLED, pairs)
    # c: 1/62 + 1/61; a: 2/63; b: 1/61; d: in no list, last
    assert sorted(order, key=order.get) == ["c", "a", "b", "d"]
    assert order["c"] == 1.0 and order["d"] == 4.0


def test_uncertain_puts_the_machine_judges_doubt_and_its_disagreement_with_people_first():
    sure = Pair("sure", {"bm25": 1}, machine=[0.97, 0.01, 0.01, 0.01])
    torn = Pair("torn", {"bm25": 2}, machine=[0.3, 0.3, 0.2, 0.2])
    disputed = Pair("disputed", {"bm25": 3}, grades=(3, 3), machine=[0.9, 0.05, 0.03, 0.02])
    unseen = Pair("unseen", {"bm25": 4})
    order = strategies.priorities(strategies.UNCERTAIN, [sure, torn, disputed, unseen])
    assert sorted(order, key=order.get) == ["disputed", "unseen", "torn", "sure"]
    assert strategies.uncertainty(disputed) == pytest.approx(abs(0.9 * 0 + 0.05 + 0.06 + 0.06 - 3) / 3)


def test_without_a_machine_judge_uncertain_falls_back_to_the_pooled_order():
    pairs = [Pair(i, {"bm25": 5 - i}) for i in range(5)]
    uncertain = strategies.priorities(strategies.UNCERTAIN, pairs)
    pooled = strategies.priorities(strategies.POOLED, pairs)
    assert sorted(uncertain, key=uncertain.get) == sorted(pooled, key=pooled.get) == [4, 3, 2, 1, 0]


def test_the_bandit_follows_the_list_that_has_been_yielding_relevant_documents():
    # Two lists of one query: "good" ranked relevant pairs on top, "poor" irrelevant ones; both
    # judged two deep. The next pairs come from "good" until it runs out.
    good = [Pair(f"g{i}", {"good": i + 1}, grades=(3,) if i < 2 else ()) for i in range(4)]
    poor = [Pair(f"p{i}", {"poor": i + 1}, grades=(0,) if i < 2 else ()) for i in range(4)]
    order = strategies.priorities(strategies.BANDIT, good + poor)
    unjudged = sorted((k for k in order if k in {"g2", "g3", "p2", "p3"}), key=order.get)
    assert unjudged == ["g2", "g3", "p2", "p3"]
    # Across queries: this query's best list has yielded 2 of 2 (mean 3/4), an untried one 1/2.
    fresh = strategies.priorities(strategies.BANDIT, [Pair("x", {"bm25": 1})])
    assert min(order.values()) < min(fresh.values())
    barren = strategies.priorities(strategies.BANDIT, [Pair(f"b{i}", {"bm25": i + 1}, grades=(0,) if i < 3 else ())
                                                       for i in range(5)])
    assert min(fresh.values()) < min(barren.values())


def test_an_unknown_strategy_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown judging strategy 'best'"):
        strategies.priorities("best", [Pair(1)])


def test_next_batch_takes_the_query_whose_best_open_pair_comes_first_then_fewest_holders():
    open_priorities = {"q1": {1: 2.0, 2: 5.0}, "q2": {3: 1.0, 4: 3.0, 5: 4.0}, "q3": {6: 1.0}}
    holders = {"q2": 1}
    assert strategies.next_batch(open_priorities, strategy=strategies.POOLED, task_size=2, holders=holders,
                                 shuffle={}) == ("q3", [6])
    del open_priorities["q3"]
    assert strategies.next_batch(open_priorities, strategy=strategies.POOLED, task_size=2, holders=holders,
                                 shuffle={}) == ("q2", [3, 4])
    assert strategies.next_batch(open_priorities, strategy=strategies.FEWEST_JUDGED, task_size=2, holders=holders,
                                 shuffle={}) == ("q1", [1, 2])
    assert strategies.next_batch({"q": {}}, strategy=strategies.POOLED, task_size=2, holders={}, shuffle={}) is None


# ---- on the database ----

DB = pytest.mark.django_db


def _ranked_collection(*, strategy, k=1, queries=4, candidates=12, task_size=5, slug="ranked"):
    collection = make_collection(slug=slug, queries=queries, candidates=candidates, k=k)
    collection.judging_strategy, collection.task_size = strategy, task_size
    collection.save(update_fields=["judging_strategy", "task_size"])
    # A BM25 list and a dense list per query, in two different orders derived from the pk.
    for candidate in Candidate.objects.filter(collection=collection).order_by("pk"):
        position = candidate.pk % candidates
        candidate.sources = {"bm25": {"rank": (position * 5) % candidates + 1, "score": 1.0},
                             "dense": {"rank": (position * 7) % candidates + 1, "score": 0.5}}
        candidate.save(update_fields=["sources"])
    return collection


def _finish(user, lease, grade_of=lambda candidate_id: 2):
    for cid in assignment.task_candidate_ids(lease):
        judging.record_judgment(annotator=user, candidate=Candidate.objects.get(pk=cid), grade=grade_of(cid),
                                idempotency_key=f"{user.pk}-{cid}")
    assignment.finish_task(lease=lease)


def _replay(collection, annotator):
    """What strategies.next_batch would hand this annotator now, from the database's state."""
    judged = set(Judgment.objects.standing().filter(annotator=annotator).values_list("candidate_id", flat=True))
    grades: dict[int, list[int]] = {}
    for cid, grade in Judgment.objects.people_grades().filter(collection=collection).values_list("candidate_id",
                                                                                                  "grade"):
        grades.setdefault(cid, []).append(grade)
    state, best, holders, shuffle = {}, {}, {}, {}
    k = collection.overlap_k
    for query in Query.objects.filter(collection=collection):
        rows = list(Candidate.objects.filter(query=query).values_list("pk", "sources", "coverage", "offers"))
        order = strategies.priorities(collection.judging_strategy,
                                      [priorities.pair_of(pk, s, grades.get(pk, ())) for pk, s, _c, _o in rows])
        short = {pk: order[pk] for pk, _s, coverage, offers in rows if coverage < k and offers < k + 2}
        state[query.pk] = {pk: p for pk, p in short.items() if pk not in judged}
        best[query.pk] = min(short.values(), default=None)
        holders[query.pk], shuffle[query.pk] = query.holders, query.shuffle_key
    return strategies.next_batch(state, strategy=collection.judging_strategy, task_size=collection.task_size,
                                 holders=holders, shuffle=shuffle, query_best=best)


@DB
@pytest.mark.parametrize("strategy", [strategies.POOLED, strategies.UNCERTAIN, strategies.BANDIT,
                                      strategies.FEWEST_JUDGED])
def test_assignment_hands_out_what_the_strategy_says_task_after_task(strategy):
    collection = _ranked_collection(strategy=strategy, k=2)
    first, second = make_annotators(collection, 2)
    rounds = 0
    for user in [first, second] * 8:
        expected = _replay(collection, user)
        lease = assignment.next_task(collection=collection, annotator=user)
        if expected is None:
            assert lease is None
            continue
        assert (lease.query_id, sorted(lease.items)) == (expected[0], sorted(expected[1]))
        if strategy != strategies.FEWEST_JUDGED:  # each query's best open candidate, kept in step
            for query in Query.objects.filter(collection=collection):
                short = Candidate.objects.filter(query=query).needing_judges(collection.overlap_k)
                assert query.next_priority == min(short.values_list("priority", flat=True), default=None)
        _finish(user, lease, grade_of=lambda cid: 3 if cid % 3 == 0 else 0)
        rounds += 1
    assert rounds >= 8
    report = assignment.coverage_report(collection)
    assert report["coverage_violations"] == report["over_judged"] == report["duplicates"] == 0


@DB
def test_pooled_gives_every_query_its_best_ranked_pairs_before_any_query_goes_deeper():
    collection = _ranked_collection(strategy=strategies.POOLED, k=1, queries=4, candidates=12, task_size=5)
    (user,) = make_annotators(collection, 1)
    tasks = []
    while (lease := assignment.next_task(collection=collection, annotator=user)) is not None:
        tasks.append(lease.query_id)
        depth = dict(Candidate.objects.filter(pk__in=lease.items).values_list("pk", "priority"))
        assert len(lease.items) <= 5
        assert max(depth.values()) <= min(Candidate.objects.filter(query_id=lease.query_id, coverage=0)
                                          .values_list("priority", flat=True), default=99)
        _finish(user, lease)
    assert len(set(tasks[:4])) == 4         # depth 1-5 of every query first
    assert len(tasks) == 4 * 3              # 12 candidates in tasks of 5, 5, 2
    assert Candidate.objects.filter(collection=collection, coverage=1).count() == 48


@DB
def test_the_machine_judges_doubt_orders_work_under_uncertain():
    collection = _ranked_collection(strategy=strategies.UNCERTAIN, k=1, queries=2, candidates=6, task_size=2)
    doubtful = list(Candidate.objects.filter(query__external_id="q1").order_by("-pk")[:2])
    for candidate in Candidate.objects.filter(collection=collection):
        probs = [0.25, 0.25, 0.25, 0.25] if candidate in doubtful else [0.94, 0.02, 0.02, 0.02]
        candidate.sources = {**candidate.sources, "machine": {"rank": 1, "score": 0.0, "probs": probs}}
        candidate.save(update_fields=["sources"])
    priorities.mark_stale(collection=collection)
    (user,) = make_annotators(collection, 1)
    lease = assignment.next_task(collection=collection, annotator=user)
    assert sorted(lease.items) == sorted(c.pk for c in doubtful)


@DB
def test_a_finished_task_makes_its_query_stale_under_the_bandit_and_the_order_follows_the_grades():
    collection = _ranked_collection(strategy=strategies.BANDIT, k=1, queries=2, candidates=8, task_size=2)
    (user,) = make_annotators(collection, 1)
    lease = assignment.next_task(collection=collection, annotator=user)
    _finish(user, lease, grade_of=lambda cid: 3)       # this query's lists yield relevant documents
    assert Query.objects.get(pk=lease.query_id).order_stale
    again = assignment.next_task(collection=collection, annotator=user)
    assert again.query_id == lease.query_id             # so it gets the deeper pool first


@DB
def test_a_task_never_says_why_its_pairs_were_chosen(client):
    collection = _ranked_collection(strategy=strategies.UNCERTAIN, k=1, queries=1, candidates=4, task_size=4)
    (user,) = make_annotators(collection, 1)
    client.force_login(user)
    assert client.post(f"/api/collections/{collection.slug}/guidelines/acknowledge/").status_code == 200
    response = client.post(f"/api/collections/{collection.slug}/tasks/next/")
    assert response.status_code in (200, 201), response.content
    page = client.get(f"/c/{collection.slug}/judge/")
    assert page.status_code == 200
    for body in (response.content.decode().lower(), page.content.decode().lower()):
        assert "document 0" in body or "document" in body
        for word in ("priority", "strategy", "uncertain", "bm25", "dense", "probs"):
            assert word not in body, word


@DB
def test_a_stale_collection_is_recomputed_by_the_worker_task():
    from annotate.tasks import refresh_priorities

    collection = _ranked_collection(strategy=strategies.POOLED, queries=3, candidates=4)
    assert Query.objects.filter(collection=collection, order_stale=True).count() == 3   # new: never computed
    assert refresh_priorities(collection.pk) == 3
    assert not Candidate.objects.filter(collection=collection, priority__isnull=True).exists()
    assert not Query.objects.filter(collection=collection, order_stale=True).exists()
    assert set(Query.objects.filter(collection=collection).values_list("next_priority", flat=True)) == {1.0}
    assert refresh_priorities(collection.pk) == 0     # twice is safe: nothing stale is left
    assert refresh_priorities(10**9) == 0


@DB
def test_new_collections_are_pooled_the_strategy_bench_budget_chose():
    assert Collection.objects.create(slug="new", name="new").judging_strategy == strategies.DEFAULT_STRATEGY == "pooled"


@DB
def test_staff_choose_the_strategy_on_the_settings_page_and_a_change_reorders_everything(client):
    from django.contrib.auth import get_user_model

    collection = _ranked_collection(strategy=strategies.POOLED, queries=2, candidates=4)
    priorities.refresh_all(collection)
    staff = get_user_model().objects.create_user("boss", password="pw-123456789", is_staff=True)
    client.force_login(staff)
    page = client.get(f"/c/{collection.slug}/settings/")
    assert 'name="judging_strategy"' in page.content.decode() and 'name="task_size"' in page.content.decode()
    form = {"name": collection.name, "description": "", "overlap_k": 1, "lease_minutes": 30,
            "guideline_version": collection.guideline_version, "judging_view": collection.judging_view,
            "gold_rate": 0, "agreement_every": 200, "adjudication_alpha": 0.4, "is_active": "on"}
    for bad, message in ((0, "greater than or equal to 1"), (501, "less than or equal to 500"), ("ten", "whole number")):
        response = client.post(f"/c/{collection.slug}/settings/", {**form, "judging_strategy": "bandit",
                                                                    "task_size": bad})
        assert response.status_code == 200 and message in response.content.decode(), bad
    response = client.post(f"/c/{collection.slug}/settings/", {**form, "judging_strategy": "best", "task_size": 5})
    assert "Select a valid choice" in response.content.decode()
    collection.refresh_from_db()
    assert collection.judging_strategy == strategies.POOLED     # nothing saved from a refused form
    assert not Query.objects.filter(collection=collection, order_stale=True).exists()

    response = client.post(f"/c/{collection.slug}/settings/", {**form, "judging_strategy": "bandit", "task_size": 3})
    assert response.status_code == 302
    collection.refresh_from_db()
    assert (collection.judging_strategy, collection.task_size) == ("bandit", 3)
    assert Query.objects.filter(collection=collection, order_stale=True).count() == 2
    api = client.get(f"/api/collections/{collection.slug}/").json()
    assert (api["judging_strategy"], api["task_size"]) == ("bandit", 3)


@DB
def test_mining_into_a_query_makes_its_order_stale_and_the_next_request_recomputes_it():
    from .test_assignment import mine_into

    collection = _ranked_collection(strategy=strategies.POOLED, k=1, queries=2, candidates=4, task_size=2)
    priorities.refresh_all(collection)
    query = Query.objects.filter(collection=collection).order_by("pk").first()
    mined = mine_into(query, 2)
    assert list(Query.objects.filter(collection=collection, order_stale=True).values_list("pk", flat=True)) == [query.pk]
    assert Candidate.objects.filter(query=query, priority__isnull=True).count() == 2    # the new pairs
    (user,) = make_annotators(collection, 1)
    lease = assignment.next_task(collection=collection, annotator=user)
    assert not Query.objects.filter(collection=collection, order_stale=True).exists()
    rows = list(Candidate.objects.filter(query=query).values_list("pk", "sources", "priority"))
    expected = strategies.priorities(strategies.POOLED, [priorities.pair_of(pk, s, ()) for pk, s, _p in rows])
    assert {pk: p for pk, _s, p in rows} == expected and set(mined) <= set(expected)
    assert lease is not None
