"""Agreement reports: one computation of a collection's agreement figures each."""
from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .collections import Collection


class AgreementReportQuerySet(models.QuerySet):
    """Which report speaks for a collection, written once for the dashboard, the report task and the export."""

    def whole_collection(self):
        """Reports over all of a collection's judgments; a subset's figures (a query, an annotator
        pair, a date range) are not the collection's."""
        return self.filter(scope={})

    def newest_first(self):
        return self.order_by("-created_at", "-pk")

    def latest_for(self, collection) -> "AgreementReport | None":
        """The collection's latest whole-collection report, or None before the first."""
        return self.filter(collection=collection).whole_collection().newest_first().first()


class AgreementReport(models.Model):
    """One computation of a collection's agreement figures, kept so the dashboard shows the trend."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="agreement_reports")
    created_at = models.DateTimeField(auto_now_add=True)
    # How many human judgments existed when it was computed: the debounce compares against this.
    n_judgments = models.PositiveIntegerField(default=0)
    scope = models.JSONField(default=dict, blank=True, help_text=_("Filters the report was computed over."))
    overall = models.JSONField(default=dict, blank=True)
    per_annotator = models.JSONField(default=list, blank=True)
    per_pair = models.JSONField(default=list, blank=True)
    per_query = models.JSONField(default=list, blank=True, help_text=_("Queries below the adjudication threshold."))
    seconds = models.FloatField(default=0.0)

    objects = AgreementReportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["collection", "-created_at"], name="agreement_report_latest")]
