"""The relevance data model: what is judged, by whom, and who holds which work.

Invariants live in the database (unique and check constraints), so a race between two web
processes or a redelivered Celery message can never store a second judgment or an impossible grade.
"""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from .splits import SPLITS, split_for


def new_shuffle_key() -> int:
    """A random 62-bit key: queries are handed out in a stable random order, not import order."""
    import secrets

    return secrets.randbits(62)

GRADE_MIN, GRADE_MAX = 0, 3
GRADE_LABELS = {
    0: ("irrelevant", "不相关"),
    1: ("marginal", "低相关"),
    2: ("relevant", "中等相关"),
    3: ("highly relevant", "高相关"),
}
GRADE_CHOICES = [(grade, f"{grade} – {en} / {zh}") for grade, (en, zh) in GRADE_LABELS.items()]
grade_validators = [MinValueValidator(GRADE_MIN), MaxValueValidator(GRADE_MAX)]


class Collection(models.Model):
    """A labelling project: its documents, queries, candidates and the rules for judging them."""

    class JudgingView(models.TextChoices):
        LISTWISE = "listwise", "All candidates of a query at once"
        PAIRWISE = "pair", "One query–document pair at a time"

    class Tokenizer(models.TextChoices):
        AUTO = "auto", "Auto (currently jieba words + characters; the measured default)"
        JIEBA = "jieba", "CJK: jieba words + characters; English: words minus stop words"
        BIGRAM = "bigram", "CJK: character bigrams + characters; English: words minus stop words"
        WHITESPACE = "whitespace", "Lower-cased words only, CJK runs kept whole"

    slug = models.SlugField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9_-]*$", "Use lower-case letters, digits, - and _.")],
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    overlap_k = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="How many annotators judge each candidate.",
    )
    lease_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)],
        help_text="How long an annotator holds a query before it is given back.",
    )
    guideline_version = models.CharField(max_length=32, default="v1")
    judging_view = models.CharField(max_length=16, choices=JudgingView.choices, default=JudgingView.LISTWISE)
    tokenizer = models.CharField(max_length=16, choices=Tokenizer.choices, default=Tokenizer.AUTO)
    mining_settings = models.JSONField(default=dict, blank=True)
    gold_rate = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Share of gold candidates mixed into each task (0 = none).",
    )
    agreement_every = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(1)],
        help_text="Recompute the agreement report after this many new judgments.",
    )
    adjudication_alpha = models.FloatField(
        default=0.4, help_text="Queries whose ordinal alpha falls below this go to adjudication.",
    )
    # Bumped whenever a document is added or its text changes: caches keyed on it (BM25 index,
    # embeddings) are rebuilt only when the corpus really changed.
    corpus_version = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="collections")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap_k__gte=1), name="collection_overlap_k_positive"),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="collection_lease_positive"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0, gold_rate__lte=0.5), name="collection_gold_rate_range"),
        ]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """An annotator (or a collection manager) taking part in a collection."""

    class Role(models.TextChoices):
        ANNOTATOR = "annotator", "Annotator"
        MANAGER = "manager", "Manager"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["collection", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.collection}"


class AnnotatorProfile(models.Model):
    """What the app knows about an annotator beyond the login: simulated annotators are marked."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator_profile")
    is_simulated = models.BooleanField(default=False)
    simulation = models.JSONField(default=dict, blank=True, help_text="Noise and seed of a simulated annotator.")

    def __str__(self) -> str:
        return f"{self.user}{' (simulated)' if self.is_simulated else ''}"


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


class Query(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="queries")
    external_id = models.CharField(max_length=255)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64)
    split = models.CharField(max_length=8, choices=[(s, s) for s in SPLITS])
    # Assignment bookkeeping (annotate/assignment.py): how many annotators hold or finished this
    # query (active + done leases), and a random key for a stable random order among equals.
    holders = models.PositiveIntegerField(default=0)
    shuffle_key = models.BigIntegerField(default=new_shuffle_key)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "queries"
        constraints = [
            models.UniqueConstraint(fields=["collection", "external_id"], name="query_external_id_unique"),
            models.CheckConstraint(condition=Q(split__in=SPLITS), name="query_split_valid"),
        ]
        indexes = [
            # The annotator's next task: fewest holders first, then the stable random order.
            models.Index(fields=["collection", "holders", "shuffle_key"], name="query_next_task"),
        ]

    def save(self, *args, **kwargs):
        if not self.split:
            self.split = split_for(self.external_id)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.external_id


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
    # How many people judged this pair or hold it in an active lease without having judged it yet.
    # Kept <= the collection's overlap k by annotate/assignment.py, under a lock on the query row.
    coverage = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

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
        ]

    def __str__(self) -> str:
        return f"{self.query_id}/{self.document_id}"


class Judgment(models.Model):
    """One grade for one candidate from one annotator — or from a named non-human source.

    People's judgments have an `annotator` and an empty `source`; imported prior labels
    (qrels, labelled files) have no annotator and a `source` such as "qrels:qrels.tsv", so they
    count as prior labels but can never be mistaken for a person's.
    """

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="judgments")
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="judgments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="judgments"
    )
    source = models.CharField(max_length=255, blank=True, default="")
    grade = models.PositiveSmallIntegerField(null=True, blank=True, choices=GRADE_CHOICES, validators=grade_validators)
    skipped = models.BooleanField(default=False)
    skip_reason = models.CharField(max_length=500, blank=True)
    flagged = models.BooleanField(default=False)
    # An undone first grade: the row (and its history) stays, but it is no grade and no skip.
    withdrawn = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    seconds_spent = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    guideline_version = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["candidate", "annotator"], condition=Q(annotator__isnull=False),
                name="judgment_one_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["candidate", "source"], condition=Q(annotator__isnull=True),
                name="judgment_one_per_source",
            ),
            models.CheckConstraint(
                condition=Q(annotator__isnull=False, source="") | Q(annotator__isnull=True) & ~Q(source=""),
                name="judgment_annotator_xor_source",
            ),
            models.CheckConstraint(
                condition=(Q(withdrawn=False, skipped=False) & Q(grade__gte=GRADE_MIN, grade__lte=GRADE_MAX))
                | Q(withdrawn=False, skipped=True, grade__isnull=True)
                | Q(withdrawn=True, skipped=False, grade__isnull=True),
                name="judgment_grade_or_skip",
            ),
            models.CheckConstraint(
                condition=Q(seconds_spent__isnull=True) | Q(seconds_spent__gte=0),
                name="judgment_seconds_nonnegative",
            ),
        ]
        indexes = [
            models.Index(fields=["collection", "created_at"], name="judgment_collection_time"),
            models.Index(fields=["annotator", "created_at"], name="judgment_annotator_time"),
        ]

    @property
    def is_human(self) -> bool:
        return self.annotator_id is not None

    def __str__(self) -> str:
        who = self.source or f"user {self.annotator_id}"
        return f"{self.candidate_id} by {who}: {'skip' if self.skipped else self.grade}"


class JudgmentRevision(models.Model):
    """Every change of a judgment, kept forever: who, when, old and new."""

    judgment = models.ForeignKey(Judgment, on_delete=models.CASCADE, related_name="revisions")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_by_source = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField(auto_now_add=True)
    old_grade = models.PositiveSmallIntegerField(null=True, blank=True)
    new_grade = models.PositiveSmallIntegerField(null=True, blank=True)
    old_skipped = models.BooleanField(default=False)
    new_skipped = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True)
    # The client's key for the request that made this change: a repeated request (double submit,
    # retry after a lost response) finds its revision and changes nothing.
    idempotency_key = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["changed_at", "id"]
        indexes = [models.Index(fields=["judgment", "changed_at"], name="revision_judgment_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["changed_by", "idempotency_key"], condition=~Q(idempotency_key=""),
                name="revision_idempotency_key_unique",
            ),
        ]


class Lease(models.Model):
    """An annotator holding a query (a listwise task) until `expires_at`.

    One row per (query, annotator), ever: its status moves active -> done (or expired/released,
    which give the work back). Pinned leases are assignments made by staff.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DONE = "done", "Done"
        EXPIRED = "expired", "Expired"
        RELEASED = "released", "Released"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="leases")
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    pinned = models.BooleanField(default=False)
    # The candidate ids this lease hands to its annotator (those that still needed a judge when it
    # was taken); they count towards each candidate's coverage while the lease is active.
    items = models.JSONField(default=list, blank=True)
    acquired_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["query", "annotator"], name="lease_unique")]
        indexes = [
            models.Index(fields=["annotator", "status"], name="lease_annotator_status"),
            models.Index(fields=["query", "status"], name="lease_query_status"),
            models.Index(fields=["collection", "status", "expires_at"], name="lease_collection_expiry"),
        ]


class ImportJob(models.Model):
    """An import started from the web or the API, run by a Celery worker."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # {"corpus": "/abs/path", ...}: the uploaded files, kept under DATA_DIR/uploads/<job id>/.
    files = models.JSONField(default=dict)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def progress(self) -> float:
        if self.status == self.Status.DONE:
            return 1.0
        return min(1.0, self.bytes_done / self.bytes_total) if self.bytes_total else 0.0


class GuidelineAcknowledgement(models.Model):
    """An annotator confirmed they read a guideline version; judging with it needs this first."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guideline_acks")
    version = models.CharField(max_length=32)
    acknowledged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "version"], name="guideline_ack_unique")]


class AgreementReport(models.Model):
    """One computation of a collection's agreement figures, kept so the dashboard shows the trend."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="agreement_reports")
    created_at = models.DateTimeField(auto_now_add=True)
    # How many human judgments existed when it was computed: the debounce compares against this.
    n_judgments = models.PositiveIntegerField(default=0)
    scope = models.JSONField(default=dict, blank=True, help_text="Filters the report was computed over.")
    overall = models.JSONField(default=dict, blank=True)
    per_annotator = models.JSONField(default=list, blank=True)
    per_pair = models.JSONField(default=list, blank=True)
    per_query = models.JSONField(default=list, blank=True, help_text="Queries below the adjudication threshold.")
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["collection", "-created_at"], name="agreement_report_latest")]


class Adjudication(models.Model):
    """A staff member's final grade for a candidate, with who and why; the latest one wins."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="adjudications")
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="adjudications")
    grade = models.PositiveSmallIntegerField(choices=GRADE_CHOICES, validators=grade_validators)
    reason = models.TextField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(grade__gte=GRADE_MIN, grade__lte=GRADE_MAX), name="adjudication_grade_range"),
        ]
        indexes = [models.Index(fields=["candidate", "-created_at"], name="adjudication_latest")]


class ExportSnapshot(models.Model):
    """One export: its parameters, counts, file and checksum, so a training run names its data exactly."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="export_snapshots")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    format = models.CharField(max_length=16)
    split = models.CharField(max_length=8, default="all")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    counts = models.JSONField(default=dict, blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    # Human judgments in the collection when the export ran: retraining compares against it.
    n_judgments = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
