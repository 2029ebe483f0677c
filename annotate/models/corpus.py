"""What is judged: documents, queries (with their split) and candidates (query, document pairs)."""
from __future__ import annotations

from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils.translation import gettext_lazy as _

from ..splits import SPLITS, split_for
from .collections import Collection
from .grades import GRADE_MAX, GRADE_MIN, grade_validators


def new_shuffle_key() -> int:
    """A random 62-bit key: queries are handed out in a stable random order, not import order."""
    import secrets

    return secrets.randbits(62)


class Document(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    external_id = models.CharField(max_length=255)
    title = models.TextField(blank=True)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    # sha256 of title+text: lets a re-import tell a real change from a repeat cheaply.
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["collection", "external_id"], name="document_external_id_unique"),
        ]

    def __str__(self) -> str:
        return self.external_id


class QueryQuerySet(models.QuerySet):
    def lock(self, pks) -> list[int]:
        """Take the row locks of these queries, in primary-key order (the order assignment and
        judging lock one query in), so two writers never deadlock; inside a transaction."""
        return list(self.select_for_update().filter(pk__in=list(pks)).order_by("pk").values_list("pk", flat=True))

    def set_next_priority(self, k: int, **also) -> int:
        """Write each query's `next_priority`: the best priority among its candidates that still need
        a judge (gold aside), NULL when none does (and any other fields in `also`, in the same
        UPDATE). Under the query row locks, after any change of their candidates' coverage, offers
        or priorities."""
        best = (Candidate.objects.needing_judges(k).filter(query=OuterRef("pk"), priority__isnull=False)
                .order_by("priority").values("priority")[:1])
        return self.update(next_priority=Subquery(best), **also)

    def open_for_judging(self, k: int):
        """Queries with a candidate (gold aside) that still needs a judge (see
        CandidateQuerySet.needing_judges) — however many people finished the query already: a
        candidate mined into a finished query is work like any other. Assignment hands these out;
        pre-mining counts them as ready work."""
        return self.filter(Exists(Candidate.objects.needing_judges(k).filter(query=OuterRef("pk"))))


class Query(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="queries")
    external_id = models.CharField(max_length=255)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64)
    split = models.CharField(max_length=8, choices=[(s, s) for s in SPLITS])
    # Assignment bookkeeping (annotate/judging/assignment.py): how many annotators hold or finished this
    # query (active + done leases; it orders the work, fewest first), and a random key for a stable
    # random order among equals.
    holders = models.PositiveIntegerField(default=0)
    shuffle_key = models.BigIntegerField(default=new_shuffle_key)
    # The judging order under a ranked strategy (annotate/judging/priorities.py): the best (lowest)
    # priority among the query's candidates that still need a judge (NULL: none, or never computed),
    # kept with `coverage` under the query's row lock, so the next task is one index scan away; and
    # whether its candidates' priorities must be recomputed (new pairs or ranks, new grades, another
    # strategy) before it is trusted.
    next_priority = models.FloatField(null=True, blank=True)
    order_stale = models.BooleanField(default=True, db_default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = QueryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = _("queries")
        constraints = [
            models.UniqueConstraint(fields=["collection", "external_id"], name="query_external_id_unique"),
            models.CheckConstraint(condition=Q(split__in=SPLITS), name="query_split_valid"),
        ]
        indexes = [
            # The annotator's next task: fewest holders first, then the stable random order.
            models.Index(fields=["collection", "holders", "shuffle_key"], name="query_next_task"),
            # ... and under a ranked strategy: best open candidate first.
            models.Index(fields=["collection", "next_priority", "holders", "shuffle_key"], name="query_next_ranked"),
            models.Index(fields=["collection"], condition=Q(order_stale=True), name="query_order_stale"),
        ]

    def save(self, *args, **kwargs):
        if not self.split:
            self.split = split_for(self.text)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.external_id


# A skip gives its slot back, so a pair can be offered again; these many offers beyond k bound it
# (a pair nobody can judge ends with fewer grades instead of circling forever).
SPARE_OFFERS = 2


def max_offers(k: int) -> int:
    """How many people a pair may be offered to in all (graded, skipped or holding it)."""
    return k + SPARE_OFFERS


class CandidateQuerySet(models.QuerySet):
    def needing_judges(self, k: int):
        """Ordinary (non-gold) candidates graded or held by fewer than k people and offered to
        fewer than k + SPARE_OFFERS."""
        return self.filter(coverage__lt=k, offers__lt=max_offers(k), is_gold=False)

    def add_proposed(self, *, collection_id: int, query_pks, sources: dict, new: list,
                     guards: dict | None = None) -> int:
        """Record what retrieval proposed for some queries (whose rows the caller has locked):
        ``sources`` maps (query pk, document pk) to {source name: {"rank", "score"}}, merged into an
        existing candidate's sources (other sources kept); the pairs in ``new`` that are not
        candidates yet are added, those in ``guards`` tagged with the mining guard that would have
        dropped them (the false-negative lane). Returns how many were added. `coverage` and
        `offers` are never written: a new candidate starts at 0 and assignment owns the counters."""
        guards = guards or {}
        query_pks = list(query_pks)
        existing = {
            (candidate.query_id, candidate.document_id): candidate
            for candidate in self.filter(query_id__in=query_pks).only("pk", "query_id", "document_id", "sources")
        }
        changed = []
        for pair, proposed in sources.items():
            candidate = existing.get(pair)
            if candidate is not None:
                merged = {**(candidate.sources or {}), **proposed}
                if merged != candidate.sources:
                    candidate.sources = merged
                    changed.append(candidate)
        if changed:
            self.bulk_update(changed, ["sources"], batch_size=500)
        # New ranks (and new pairs) move the judging order: these queries' priorities are stale.
        Query.objects.filter(pk__in=query_pks, order_stale=False).update(order_stale=True)
        additions = [Candidate(collection_id=collection_id, query_id=query_pk, document_id=document,
                               sources=sources[(query_pk, document)], guard=guards.get((query_pk, document), ""))
                     for query_pk, document in new if (query_pk, document) not in existing]
        before = self.filter(query_id__in=query_pks).count()
        # ignore_conflicts: the (query, document) constraint backs this up against other writers.
        self.bulk_create(additions, ignore_conflicts=True, batch_size=1000)
        return self.filter(query_id__in=query_pks).count() - before


class Candidate(models.Model):
    """A (query, document) pair to be judged.

    `sources` maps each retrieval source that proposed the pair to its rank and score there,
    e.g. {"bm25": {"rank": 3, "score": 12.1}, "run:bm25": {...}, "qrels": {}}.
    """

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="candidates")
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="candidates")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="candidates")
    sources = models.JSONField(default=dict, blank=True)
    is_gold = models.BooleanField(default=False)
    gold_grade = models.PositiveSmallIntegerField(null=True, blank=True, validators=grade_validators)
    # How many people graded this pair or hold it in an active lease without having graded it yet (a
    # skip counts while its lease is active, then gives the slot back). Kept <= the collection's
    # overlap k by annotate/judging/assignment.py, under a lock on the query row.
    coverage = models.PositiveSmallIntegerField(default=0, db_default=0)
    # How many people were handed this pair and graded it, skipped it or still hold it (an offer
    # that expires unjudged is given back); at most k + SPARE_OFFERS, same lock.
    offers = models.PositiveSmallIntegerField(default=0, db_default=0)
    # The mining guard that would have dropped this pair as a likely positive (mining/negatives.py:
    # "range_min", "max_score", "margin", "dedup"); "" for every other candidate. Kept so people
    # settle it and the guard is measured (annotate/judging/false_negatives.py); for staff only,
    # never shown to annotators.
    guard = models.CharField(max_length=16, blank=True, default="", db_default="")
    # Where the collection's judging strategy puts this pair (lower first; annotate/judging/
    # priorities.py); NULL until first computed. Recomputed for the whole query when it is marked
    # stale (Query.order_stale).
    priority = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CandidateQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["query", "document"], name="candidate_pair_unique"),
            models.CheckConstraint(
                condition=Q(gold_grade__isnull=True) | Q(gold_grade__gte=GRADE_MIN, gold_grade__lte=GRADE_MAX),
                name="candidate_gold_grade_range",
            ),
            models.CheckConstraint(
                condition=Q(is_gold=False) | Q(gold_grade__isnull=False), name="candidate_gold_has_grade"
            ),
        ]
        indexes = [
            models.Index(fields=["collection", "query"], name="candidate_collection_query"),
            models.Index(fields=["query", "coverage"], name="candidate_query_coverage"),
            models.Index(fields=["query", "priority"], name="candidate_query_priority"),
        ]

    def __str__(self) -> str:
        return f"{self.query_id}/{self.document_id}"
