"""Collections and who takes part in them: members, annotator profiles, guideline acknowledgements."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# Candidates per task under the ranked strategies: chosen by bench/budget.py (README, "Judge next
# what matters"); the cap keeps one task a page an annotator can work through.
TASK_SIZE_DEFAULT = 25
TASK_SIZE_MAX = 500


class Collection(models.Model):
    """A labelling project: its documents, queries, candidates and the rules for judging them."""

    class JudgingView(models.TextChoices):
        LISTWISE = "listwise", _("All candidates of a query at once")
        PAIRWISE = "pair", _("One query–document pair at a time")

    class Tokenizer(models.TextChoices):
        AUTO = "auto", _("Auto (currently jieba words + characters; the measured default)")
        JIEBA = "jieba", _("CJK: jieba words + characters; English: words minus stop words")
        BIGRAM = "bigram", _("CJK: character bigrams + characters; English: words minus stop words")
        WHITESPACE = "whitespace", _("Lower-cased words only, CJK runs kept whole")

    class JudgingStrategy(models.TextChoices):  # the names of annotate/judging/strategies.py
        POOLED = "pooled", _("Pooled: every query's best-ranked candidates first (fused rank)")
        FEWEST_JUDGED = "fewest-judged", _("Fewest judged: a whole query at a time")
        UNCERTAIN = "uncertain", _("Uncertain: where the machine judge is least sure or disagrees with people")
        BANDIT = "bandit", _("Bandit: deeper pools for ranked lists that keep yielding relevant documents")

    slug = models.SlugField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9_-]*$", _("Use lower-case letters, digits, - and _."))],
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    overlap_k = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text=_("How many annotators judge each candidate."),
    )
    lease_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)],
        help_text=_("How long an annotator holds a query before it is given back."),
    )
    guideline_version = models.CharField(max_length=32, default="v1")
    judging_view = models.CharField(max_length=16, choices=JudgingView.choices, default=JudgingView.LISTWISE)
    tokenizer = models.CharField(max_length=16, choices=Tokenizer.choices, default=Tokenizer.AUTO)
    mining_settings = models.JSONField(default=dict, blank=True)
    gold_rate = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text=_("Share of gold candidates mixed into each task (0 = none)."),
    )
    agreement_every = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(1)],
        help_text=_("Recompute the agreement report after this many new judgments."),
    )
    # Which pairs people judge first (annotate/judging/strategies.py), and how many pairs a task
    # holds under every strategy but fewest-judged (which gives a whole query).
    judging_strategy = models.CharField(
        max_length=16, choices=JudgingStrategy.choices, default=JudgingStrategy.POOLED,
        help_text=_("Which pairs people judge first; annotators never see why a pair was chosen."),
    )
    task_size = models.PositiveSmallIntegerField(
        default=TASK_SIZE_DEFAULT, validators=[MinValueValidator(1), MaxValueValidator(TASK_SIZE_MAX)],
        help_text=_("Candidates per task (every strategy but fewest-judged, which gives the whole query)."),
    )
    adjudication_alpha = models.FloatField(
        default=0.4, help_text=_("Queries whose ordinal alpha falls below this go to adjudication."),
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
            models.CheckConstraint(condition=Q(task_size__gte=1, task_size__lte=TASK_SIZE_MAX),
                                   name="collection_task_size_range"),
        ]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """An annotator (or a collection manager) taking part in a collection."""

    class Role(models.TextChoices):
        ANNOTATOR = "annotator", _("Annotator")
        MANAGER = "manager", _("Manager")

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
    simulation = models.JSONField(default=dict, blank=True, help_text=_("Noise and seed of a simulated annotator."))
    # The interface language the user chose once (annotate.language); blank: the browser's.
    language = models.CharField(max_length=16, blank=True, default="", choices=settings.LANGUAGES)

    def __str__(self) -> str:
        return f"{self.user}{' (simulated)' if self.is_simulated else ''}"


class GuidelineAcknowledgement(models.Model):
    """An annotator confirmed they read a guideline version; judging with it needs this first."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guideline_acks")
    version = models.CharField(max_length=32)
    acknowledged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "version"], name="guideline_ack_unique")]
