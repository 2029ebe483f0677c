"""The relevance data model: what is judged, by whom, and who holds which work.

Invariants live in the database (unique and check constraints), so a race between two web
processes or a redelivered Celery message can never store a second judgment or an impossible grade.
Domain rules that read these tables are QuerySet methods next to their model, each written once.
"""
from .clicks import CLICK_SOURCE, MACHINE_SOURCE, ClickCount, ClickLog
from .collections import (
    AnnotatorProfile,
    Collection,
    GuidelineAcknowledgement,
    Membership,
)
from .corpus import Candidate, Document, Query, new_shuffle_key
from .grades import GRADE_CHOICES, GRADE_LABELS, GRADE_MAX, GRADE_MIN, grade_validators
from .jobs import ExportSnapshot, ImportJob
from .judgments import Adjudication, Judgment, JudgmentRevision
from .leases import Lease
from .reports import AgreementReport

__all__ = [
    "GRADE_CHOICES", "GRADE_LABELS", "GRADE_MAX", "GRADE_MIN", "Adjudication", "AgreementReport", "AnnotatorProfile",
    "CLICK_SOURCE", "MACHINE_SOURCE", "Candidate", "ClickCount", "ClickLog", "Collection", "Document", "ExportSnapshot", "GuidelineAcknowledgement", "ImportJob", "Judgment",
    "JudgmentRevision", "Lease", "Membership", "Query", "grade_validators", "new_shuffle_key",
]
