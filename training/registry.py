"""The registry of trained rerankers: which versions a collection has and which one serves.

At most one ModelVersion per collection is promoted (a partial unique constraint in the
database); ``promote`` swaps it atomically, so readers see the old or the new one, never none or two.
"""
from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .models import ModelVersion


def model_versions(*, collection) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(collection=collection).select_related("run").order_by("-created_at", "-pk")


def promoted_version(*, collection=None) -> ModelVersion | None:
    """The collection's promoted version; without a collection, the most recently promoted one."""
    return ModelVersion.objects.promoted(collection).select_related("collection", "run").first()


def promoted_model_dir(*, collection) -> Path | None:
    version = promoted_version(collection=collection)
    return Path(version.path) if version else None


@transaction.atomic
def promote(*, version: ModelVersion) -> ModelVersion:
    """Make ``version`` the collection's promoted model (and un-promote the previous one)."""
    # Lock the collection's versions so two promotions of one collection queue up instead of
    # tripping the one-promoted constraint.
    list(ModelVersion.objects.select_for_update().filter(collection_id=version.collection_id).values_list("pk"))
    ModelVersion.objects.promoted().filter(collection_id=version.collection_id).exclude(pk=version.pk).update(
        is_promoted=False
    )
    now = timezone.now()
    ModelVersion.objects.filter(pk=version.pk).update(is_promoted=True, promoted_at=now)
    version.is_promoted, version.promoted_at = True, now
    return version
