"""Builders for the quality tests: small collections with hand-made or simulated judgments."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotate.models import (
    AnnotatorProfile,
    Candidate,
    Collection,
    Document,
    Judgment,
    Membership,
    Query,
)
from annotate.splits import split_for


def build_collection(slug: str = "qc", *, queries: int = 4, candidates: int = 5, k: int = 3, **fields) -> Collection:
    collection = Collection.objects.create(slug=slug, name=slug, overlap_k=k, **fields)
    for q in range(queries):
        query = Query.objects.create(collection=collection, external_id=f"q{q}", text=f"query {q}",
                                     content_hash=str(q), split=split_for(f"q{q}"))
        for d in range(candidates):
            document = Document.objects.create(collection=collection, external_id=f"q{q}-d{d}",
                                               text=f"document {d} of query {q}", content_hash=f"{q}-{d}")
            Candidate.objects.create(collection=collection, query=query, document=document)
    return collection


def people(collection: Collection, names, *, simulated=()) -> dict:
    User = get_user_model()
    users = {}
    for name in names:
        user = User.objects.create_user(name, password="pw-123456789")
        Membership.objects.create(collection=collection, user=user)
        AnnotatorProfile.objects.create(user=user, is_simulated=name in simulated)
        users[name] = user
    return users


def add_judgments(collection: Collection, user, grades: dict, *, seconds=None, note="", guideline_version="v1",
                  when=None) -> list[Judgment]:
    """grades: candidate pk -> grade (None = a skip)."""
    rows = []
    for candidate_pk, grade in grades.items():
        rows.append(Judgment(collection=collection, candidate_id=candidate_pk, annotator=user, grade=grade,
                             skipped=grade is None, skip_reason="unreadable" if grade is None else "",
                             seconds_spent=seconds, note=note, guideline_version=guideline_version))
    made = Judgment.objects.bulk_create(rows)
    if when is not None:
        Judgment.objects.filter(pk__in=[j.pk for j in made]).update(updated_at=when, created_at=when)
    return made


def noisy(truth: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Each grade off by one with probability `noise` (the neighbour picked at random, kept in 0..3)."""
    step = np.where(rng.random(truth.size) < 0.5, -1, 1)
    step = np.where(truth == 0, 1, np.where(truth == 3, -1, step))
    return np.where(rng.random(truth.size) < noise, truth + step, truth)


@pytest.fixture
def yesterday():
    return timezone.now() - timedelta(days=1)
