"""Who holds which query: leases (tasks) and staff pins."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils.translation import pgettext_lazy

from .collections import Collection
from .corpus import Query


class LeaseQuerySet(models.QuerySet):
    def renew(self, pk: int, *, now: datetime, lease_minutes: int) -> datetime:
        """Activity keeps an active, unpinned lease alive: its expiry moves to now + lease_minutes,
        which is returned. (The grade's one-statement SQL path in annotate/judging/services.py does
        the same update.)"""
        expires = Lease.expiry(now, lease_minutes=lease_minutes, pinned=False)
        self.filter(pk=pk, status=Lease.Status.ACTIVE, pinned=False).update(expires_at=expires)
        return expires


class Lease(models.Model):
    """An annotator holding a query (a listwise task) until `expires_at`.

    One row per (query, annotator), ever: its status moves active -> done (or expired/released,
    which give the work back), and back to active when the annotator is handed the query again:
    after an expiry, or with the candidates mined into it since they finished it (the lease's items
    are then just those). Pinned leases are assignments made by staff; removing a member releases
    theirs.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", pgettext_lazy("lease status", "Active")
        DONE = "done", pgettext_lazy("lease status", "Done")
        EXPIRED = "expired", pgettext_lazy("lease status", "Expired")
        RELEASED = "released", pgettext_lazy("lease status", "Released")

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="leases")
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    pinned = models.BooleanField(default=False)
    # The candidate ids this lease hands to its annotator (those that still needed a judge when it
    # was taken); they count towards each candidate's coverage and offers while the lease is active.
    items = models.JSONField(default=list, blank=True)
    acquired_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = LeaseQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["query", "annotator"], name="lease_unique")]
        indexes = [
            models.Index(fields=["annotator", "status"], name="lease_annotator_status"),
            models.Index(fields=["query", "status"], name="lease_query_status"),
            models.Index(fields=["collection", "status", "expires_at"], name="lease_collection_expiry"),
        ]

    @staticmethod
    def expiry(now: datetime, *, lease_minutes: int, pinned: bool) -> datetime | None:
        """When a lease taken or renewed at `now` expires; a pinned lease never does."""
        return None if pinned else now + timedelta(minutes=lease_minutes)
