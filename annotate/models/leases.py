"""Who holds which query: leases (tasks) and staff pins."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from .collections import Collection
from .corpus import Query


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
