"""Grades: judgments (people's and imported sources'), their revisions, and staff adjudications."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from .collections import Collection
from .corpus import Candidate
from .grades import GRADE_CHOICES, GRADE_MAX, GRADE_MIN, grade_validators


class JudgmentQuerySet(models.QuerySet):
    """Which judgments count, written once for every reader (export, agreement, quality, retraining)."""

    def by_people(self):
        """People's judgments, not imported labels (those have a `source` and no annotator)."""
        return self.filter(annotator__isnull=False)

    def standing(self):
        """Judgments that stand: a grade or a skip, not an undone (withdrawn) first grade."""
        return self.filter(withdrawn=False)

    def grades(self):
        """Standing grades: not skipped, not withdrawn (the judgment_grade_or_skip constraint makes
        these the rows with a grade)."""
        return self.filter(grade__isnull=False, withdrawn=False, skipped=False)

    def people_grades(self):
        """A person's standing grades: what agreement, quality and retraining count."""
        return self.by_people().grades()


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

    objects = JudgmentQuerySet.as_manager()

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
