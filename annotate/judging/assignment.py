"""Who judges what: handing out queries to annotators under an overlap of k judges per candidate.

The unit of work is a query (a listwise task of its candidates), but the invariant is kept per
candidate: `Candidate.coverage` counts the people who graded the pair plus those holding it in an
active lease without having graded it yet, and never exceeds the collection's overlap k.

Every change of coverage happens while the query row is locked (SELECT ... FOR UPDATE on
PostgreSQL; SQLite serialises writers with IMMEDIATE transactions), so two annotators asking for
work at the same moment can never both take the k-th slot. Candidate selection uses SKIP LOCKED:
an annotator never waits for a query someone else is being given; they get the next one.

Leases expire (the collection's `lease_minutes`, renewed by every grade) and give back the
candidates their holder did not judge; what was graded stays graded and keeps counting, so a new
holder is only given what is still short — exactly k judges per candidate once the queue drains.

The loop keeps going after a query is finished:
- a candidate mined into a query that k people finished is open work: anyone who has not judged
  it may be handed it — someone who finished the query gets their lease back with just the new
  candidates;
- a skip gives its slot back when its lease ends (finished, expired, released), so someone else
  can grade the pair; `Candidate.offers` counts everyone handed the pair who graded it, skipped it
  or holds it, and a pair is offered to at most k + SPARE_OFFERS people (models/corpus.py), so a
  pair nobody can judge ends short of k instead of circling forever;
- removing a member releases their active leases, pinned ones included (`release_all`); their
  judgments stay.

Which work comes first is the collection's judging strategy (annotate/judging/strategies.py):
`fewest-judged` hands out a whole query, fewest holders first; the others (`pooled`, the default,
`uncertain`, `bandit`) rank every candidate (Candidate.priority, kept by annotate/judging/
priorities.py) and hand out the query whose best open candidate comes first, with its `task_size`
best open candidates. The strategy never changes the invariants above, and the task shows the
candidates in the annotator's own shuffled order, with nothing that says why they were chosen.

Gold candidates (Candidate.is_gold, with a known gold_grade) are mixed into the tasks of their own
query at the collection's `gold_rate`: a task with n ordinary candidates gets g more, gold ones,
with g = floor(rate * n / (1 - rate) + u), u a uniform draw hashed from (annotator, query), so gold
makes up `rate` of what people judge on average; the gold candidates are those of the query the
annotator has not judged, in their own hashed order. Gold candidates are exempt from the overlap
k: every annotator may judge them (that is what scores them), so assignment never counts them in
`coverage` or `offers` and never hands out a query for its gold alone. In the task they look like
any other candidate (annotate/judging/selectors.py shows no gold flag, nor a mining guard).
"""
from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Candidate, Collection, Judgment, Lease, Query
from ..models.corpus import max_offers
from . import priorities

# How many queries one request may pass over when every remaining candidate of a query turns out
# to be judged already by the asking annotator (possible after their own lease expired).
_MAX_CLAIM_ATTEMPTS = 8


class AssignmentError(Exception):
    """A request about assignment that cannot be honoured; the message says why."""


def lease_expiry(collection: Collection, now: datetime) -> datetime:
    return Lease.expiry(now, lease_minutes=collection.lease_minutes, pinned=False)


def lock_query(query_id: int) -> None:
    """Take the query's row lock, which every change of its leases, coverage and judgments holds.
    (Plain SQL: it runs on every grade. SQLite has no row locks; it serialises writers itself.)"""
    lock = f" {connection.ops.for_update_sql()}" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Query._meta.db_table} WHERE id = %s{lock}", [query_id])


def _judged_by(annotator_id: int, candidate_ids) -> set[int]:
    """Candidates this annotator has a standing grade or skip for (an undone grade does not count)."""
    return set(
        Judgment.objects.standing().filter(annotator_id=annotator_id, candidate_id__in=list(candidate_ids))
        .values_list("candidate_id", flat=True)
    )


def _skipped_by(annotator_id: int, candidate_ids) -> set[int]:
    """Candidates this annotator has a standing skip for."""
    return set(
        Judgment.objects.standing().filter(annotator_id=annotator_id, candidate_id__in=list(candidate_ids), skipped=True)
        .values_list("candidate_id", flat=True)
    )


def _decrement(candidate_ids, field: str) -> None:
    if candidate_ids:
        Candidate.objects.filter(pk__in=list(candidate_ids), is_gold=False, **{f"{field}__gt": 0}).update(
            **{field: F(field) - 1})


def _give_back(lease: Lease, *, status: str, now: datetime) -> None:
    """End an active lease early: its unjudged items are no longer offered to its holder (coverage
    and offers), its skipped ones give their slot back (coverage). Query row is locked."""
    judged = _judged_by(lease.annotator_id, lease.items)
    unjudged = set(lease.items) - judged
    _decrement(unjudged | _skipped_by(lease.annotator_id, judged), "coverage")
    _decrement(unjudged, "offers")
    Query.objects.filter(pk=lease.query_id, holders__gt=0).update(holders=F("holders") - 1)
    _grades_changed(lease)
    lease.status = status
    lease.finished_at = now
    lease.save(update_fields=["status", "finished_at"])


def _grades_changed(lease: Lease) -> None:
    """A task ended: its query's best open candidate may have moved (slots given back), and under a
    strategy that reads grades its order is stale."""
    collection = lease.collection
    if priorities.uses_grades(collection):
        priorities.mark_stale(query_ids=[lease.query_id])
    _coverage_changed(lease.query_id, collection)


def _coverage_changed(query_id: int, collection: Collection) -> None:
    """Keep the (locked) query's best open candidate in step with its coverage and offers."""
    if priorities.uses_priorities(collection):
        Query.objects.filter(pk=query_id).set_next_priority(collection.overlap_k)


@transaction.atomic(savepoint=False)  # inside next_task: no savepoint round trips; an error aborts both
def expire_stale_leases(*, collection: Collection, now: datetime | None = None) -> int:
    """Give back the work of every lease past its expiry. Safe to run concurrently and twice."""
    now = now or timezone.now()
    stale = list(
        Lease.objects.filter(
            collection=collection, status=Lease.Status.ACTIVE, pinned=False, expires_at__lt=now
        ).values_list("pk", "query_id")
    )
    expired = 0
    for lease_id, query_id in stale:
        # Lock the query first (the same order every writer uses), then re-check the lease: another
        # process may have expired or renewed it meanwhile.
        lock_query(query_id)
        lease = (Lease.objects.filter(pk=lease_id, status=Lease.Status.ACTIVE, expires_at__lt=now)
                 .select_related("collection").first())  # _give_back reads the collection's strategy
        if lease is not None:
            _give_back(lease, status=Lease.Status.EXPIRED, now=now)
            expired += 1
    return expired


def _open_items(query: Query, *, annotator_id: int, k: int, gold_rate: float = 0.0,
                limit: int | None = None) -> list[int]:
    """Candidates of a (locked) query that still need a judge and that this annotator has not judged
    -- with a `limit`, the first `limit` of them in the strategy's order -- plus gold candidates at
    `gold_rate` when there is ordinary work to mix them into."""
    judged = Judgment.objects.standing().filter(candidate_id=OuterRef("pk"), annotator_id=annotator_id)
    open_ = Candidate.objects.filter(query=query).needing_judges(k).exclude(Exists(judged))
    if limit is not None:
        open_ = open_.order_by(F("priority").asc(nulls_last=True), "pk")[:limit]
    ordinary = sorted(open_.values_list("pk", flat=True))
    if not ordinary or gold_rate <= 0:
        return ordinary
    return ordinary + _gold_items(query, annotator_id=annotator_id, ordinary=len(ordinary), gold_rate=gold_rate)


def gold_share_draw(annotator_id: int, query_id: int) -> float:
    """A uniform [0, 1) number fixed for (annotator, query): the rounding draw of the gold count."""
    digest = hashlib.sha256(f"gold:{annotator_id}:{query_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _gold_items(query: Query, *, annotator_id: int, ordinary: int, gold_rate: float) -> list[int]:
    wanted = int(gold_rate * ordinary / (1.0 - gold_rate) + gold_share_draw(annotator_id, query.pk))
    if wanted <= 0:
        return []
    gold_ids = list(Candidate.objects.filter(query=query, is_gold=True).values_list("pk", flat=True))
    judged = _judged_by(annotator_id, gold_ids)
    fresh = shuffled([pk for pk in gold_ids if pk not in judged], annotator_id=annotator_id)
    return sorted(fresh[:wanted])


def _take(query: Query, *, annotator, collection: Collection, items: list[int], pinned: bool, now: datetime) -> Lease:
    """Record a lease on a locked query and count its (non-gold) items towards their coverage and
    offers."""
    Candidate.objects.filter(pk__in=items, is_gold=False).update(coverage=F("coverage") + 1, offers=F("offers") + 1)
    _coverage_changed(query.pk, collection)
    expires_at = None if pinned else lease_expiry(collection, now)
    # An earlier lease of this annotator comes back to life with what is open now: an expired or
    # released one, or a finished one whose query got new candidates (just those are its items).
    # The query row is locked, so reading it first and then writing is race-free.
    previous = Lease.objects.filter(query=query, annotator=annotator).values_list("status", flat=True).first()
    if previous != Lease.Status.DONE:  # a finished lease counted among the holders already
        Query.objects.filter(pk=query.pk).update(holders=F("holders") + 1)
    if previous is None:
        return Lease.objects.create(query=query, annotator=annotator, collection=collection, items=items,
                                    pinned=pinned, expires_at=expires_at)
    Lease.objects.filter(query=query, annotator=annotator).update(
        status=Lease.Status.ACTIVE, items=items, pinned=pinned, expires_at=expires_at, finished_at=None,
        acquired_at=now,
    )
    return Lease.objects.get(query=query, annotator=annotator)


def active_lease(*, collection: Collection, annotator) -> Lease | None:
    """The task an annotator is in the middle of: staff-pinned work first, then the oldest."""
    return (
        Lease.objects.filter(collection=collection, annotator=annotator, status=Lease.Status.ACTIVE)
        .select_related("collection", "query")  # the caller shows the task: its query text, collection
        .order_by("-pinned", "acquired_at", "pk")
        .first()
    )


def _open_for(queries, *, annotator_id: int, k: int, ranked: bool = False):
    """The queries with a candidate that needs a judge and that this annotator has not judged (a
    grade or a skip), and that they do not hold already — whether or not they finished the query.
    `ranked`: in the strategy's order (the query whose best candidate that needs a judge comes
    first, Query.next_priority), else fewest holders first; then the stable random order."""
    judged = Judgment.objects.standing().filter(candidate_id=OuterRef("pk"), annotator_id=annotator_id)
    held = Lease.objects.filter(query_id=OuterRef("pk"), annotator_id=annotator_id, status=Lease.Status.ACTIVE)
    open_to_them = Candidate.objects.needing_judges(k).filter(query=OuterRef("pk")).exclude(Exists(judged))
    queries = queries.exclude(Exists(held)).filter(Exists(open_to_them))
    if not ranked:
        return queries.order_by("holders", "shuffle_key", "pk")
    return queries.order_by(F("next_priority").asc(nulls_last=True), "holders", "shuffle_key", "pk")


def next_task(*, collection: Collection, annotator, now: datetime | None = None) -> Lease | None:
    """The annotator's current task, or a newly claimed query (or new candidates of a query they
    finished); None when nothing is left for them."""
    if priorities.uses_priorities(collection):
        # The order is read from the priorities: bring stale ones up to date first, in a transaction
        # of its own, so the query locks it takes are held for milliseconds, not for the claim.
        priorities.refresh_stale(collection)
    return _claim(collection=collection, annotator=annotator, now=now or timezone.now())


@transaction.atomic
def _claim(*, collection: Collection, annotator, now: datetime) -> Lease | None:
    expire_stale_leases(collection=collection, now=now)
    current = active_lease(collection=collection, annotator=annotator)
    if current is not None:
        return current
    k = collection.overlap_k
    ranked = priorities.uses_priorities(collection)
    passed_over: list[int] = []
    for _attempt in range(_MAX_CLAIM_ATTEMPTS):
        open_queries = _open_for(Query.objects.filter(collection=collection), annotator_id=annotator.pk, k=k,
                                 ranked=ranked).exclude(pk__in=passed_over)
        query = open_queries.select_for_update(skip_locked=True, of=("self",)).first()
        if query is None:
            # Every open query is locked this instant (others being handed work, or their order
            # being recomputed): wait for the first rather than tell the annotator nothing is left.
            query = open_queries.select_for_update(of=("self",)).first()
        if query is None:
            return None
        items = _open_items(query, annotator_id=annotator.pk, k=k, gold_rate=collection.gold_rate,
                            limit=collection.task_size if ranked else None)
        if items:
            return _take(query, annotator=annotator, collection=collection, items=items, pinned=False, now=now)
        passed_over.append(query.pk)
    return None


@transaction.atomic
def pin_query(*, query: Query, annotator, now: datetime | None = None) -> Lease:
    """Staff assign a query to an annotator: it comes first in their queue and does not expire."""
    now = now or timezone.now()
    collection = query.collection
    query = Query.objects.select_for_update().get(pk=query.pk)
    lease = Lease.objects.filter(query=query, annotator=annotator).first()
    if lease is not None and lease.status == Lease.Status.ACTIVE:
        lease.pinned, lease.expires_at = True, None
        lease.save(update_fields=["pinned", "expires_at"])
        return lease
    items = _open_items(query, annotator_id=annotator.pk, k=collection.overlap_k, gold_rate=collection.gold_rate)
    if not items and lease is not None and lease.status == Lease.Status.DONE:
        raise AssignmentError(_("%(annotator)s has already finished query %(query)s "
                                "and no candidate added since needs a judge")
                              % {"annotator": annotator, "query": query.external_id})
    if not items:
        raise AssignmentError(
            _("query %(query)s has no candidate left that needs a judge (overlap k=%(k)d reached) for %(annotator)s")
            % {"query": query.external_id, "k": collection.overlap_k, "annotator": annotator}
        )
    return _take(query, annotator=annotator, collection=collection, items=items, pinned=True, now=now)


def _lock_active(lease: Lease) -> Lease:
    lock_query(lease.query_id)
    lease = Lease.objects.select_related("collection").get(pk=lease.pk)  # its strategy is read on the way out
    if lease.status != Lease.Status.ACTIVE:
        raise AssignmentError(_("this task is no longer open (status: %(status)s)") % {"status": lease.status})
    return lease


@transaction.atomic
def finish_task(*, lease: Lease, now: datetime | None = None) -> Lease:
    """Close a task once every candidate in it has a grade or a skip."""
    now = now or timezone.now()
    lease = _lock_active(lease)
    judged = _judged_by(lease.annotator_id, lease.items)
    missing = set(lease.items) - judged
    if missing:
        raise AssignmentError(_("%(n)d candidate(s) still need a grade or a skip") % {"n": len(missing)})
    _decrement(_skipped_by(lease.annotator_id, judged), "coverage")  # a skip gives its slot back
    _grades_changed(lease)
    lease.status = Lease.Status.DONE
    lease.finished_at = now
    lease.save(update_fields=["status", "finished_at"])
    return lease


@transaction.atomic
def release_task(*, lease: Lease, now: datetime | None = None) -> Lease:
    """Give a task back before it expires; what was judged stays."""
    lease = _lock_active(lease)
    _give_back(lease, status=Lease.Status.RELEASED, now=now or timezone.now())
    return lease


@transaction.atomic
def release_all(*, collection: Collection, annotator, now: datetime | None = None) -> int:
    """Give back every active lease of this annotator in the collection, pinned ones too (the
    member is leaving); what they judged stays. Returns how many leases were released."""
    now = now or timezone.now()
    active = Lease.objects.filter(collection=collection, annotator=annotator, status=Lease.Status.ACTIVE)
    Query.objects.lock(active.values_list("query_id", flat=True))  # pk order, like every writer
    released = 0
    for lease in active.select_related("collection").order_by("query_id"):
        _give_back(lease, status=Lease.Status.RELEASED, now=now)
        released += 1
    if released:
        Lease.objects.filter(collection=collection, annotator=annotator, pinned=True).exclude(
            status=Lease.Status.ACTIVE).update(pinned=False)
    return released


def renew(lease: Lease, *, now: datetime | None = None) -> None:
    """Activity keeps a lease alive: push its expiry forward (pinned leases never expire)."""
    if lease.pinned:
        return
    now = now or timezone.now()
    lease.expires_at = Lease.objects.renew(lease.pk, now=now, lease_minutes=lease.collection.lease_minutes)


def shuffled(candidate_ids, *, annotator_id: int) -> list[int]:
    """Each annotator's own stable order of a query's candidates (position-bias control)."""
    def key(candidate_id: int) -> bytes:
        return hashlib.sha256(f"{annotator_id}:{candidate_id}".encode()).digest()

    return sorted(candidate_ids, key=key)


def task_candidate_ids(lease: Lease) -> list[int]:
    """What the annotator sees in a task: its items, in their own order."""
    return shuffled(lease.items, annotator_id=lease.annotator_id)


def coverage_report(collection: Collection) -> dict:
    """Audit figures: candidates by number of people's grades, any candidate graded by more than k
    people or offered to more than k + SPARE_OFFERS, and any pair judged twice by one person. Gold
    candidates are exempt from the overlap k, so they are never counted as over-judged."""
    k = collection.overlap_k
    human = Judgment.objects.filter(collection=collection).by_people().standing()
    per_candidate = human.filter(skipped=False).values("candidate_id").annotate(n=Count("id"))
    histogram: dict[int, int] = {}
    for row in per_candidate.values_list("n", flat=True):
        histogram[row] = histogram.get(row, 0) + 1
    over = per_candidate.filter(n__gt=k, candidate__is_gold=False).count()
    duplicates = (
        human.values("candidate_id", "annotator_id").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    unjudged = Candidate.objects.filter(collection=collection).exclude(
        Exists(human.filter(candidate_id=OuterRef("pk")))
    ).count()
    candidates = Candidate.objects.filter(collection=collection)
    return {"judges_histogram": histogram, "over_judged": over, "duplicates": duplicates, "unjudged": unjudged,
            "skips": human.filter(skipped=True).count(),
            "coverage_violations": candidates.filter(coverage__gt=k).count(),
            "offer_violations": candidates.filter(offers__gt=max_offers(k)).count()}


__all__ = [
    "AssignmentError", "active_lease", "coverage_report", "expire_stale_leases", "finish_task", "lease_expiry",
    "lock_query", "next_task", "pin_query", "release_all", "release_task", "renew", "shuffled", "task_candidate_ids",
]
