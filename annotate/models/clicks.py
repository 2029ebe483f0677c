"""Click logs: which logs a collection took in, and impressions and clicks per (candidate, position).

Counts, not searches: the position-based click model (annotate.clicks.click_model) needs only how
often each pair was shown at each position and how often it was clicked there, so a log of
millions of searches is a few rows per pair. A log is taken in once (its sha256 per collection):
importing the same file twice would count every search twice.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from .collections import Collection
from .corpus import Candidate

CLICK_SOURCE = "clicks"  # the judge name of the click labels in the annotator model and in `sources`
MACHINE_SOURCE = "machine"  # the machine judge's (training.machine_judge): never shown to annotators


class ClickLog(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="click_logs")
    name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    searches = models.PositiveIntegerField()
    clicks = models.PositiveIntegerField()
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["collection", "sha256"], name="click_log_once")]

    def __str__(self) -> str:
        return f"{self.name} ({self.searches} searches)"


class ClickCount(models.Model):
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="click_counts")
    position = models.PositiveSmallIntegerField()
    impressions = models.PositiveIntegerField()
    clicks = models.PositiveIntegerField()
    dwell_seconds = models.FloatField(default=0.0)  # summed over the clicks that reported a dwell

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["candidate", "position"], name="click_count_cell_unique"),
            models.CheckConstraint(condition=Q(position__gte=1), name="click_count_position_from_1"),
            models.CheckConstraint(condition=Q(clicks__lte=F("impressions")), name="click_count_clicks_le_impressions"),
        ]
