"""Admin pieces of the export: the "Export listwise snapshot" action for collections, the snapshots
list, and a "simulated annotator" filter for judgments. Registered from annotate/admin.py."""
from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from ..models import AnnotatorProfile, ExportSnapshot
from . import tasks  # noqa: F401 -- the admin loads in every process (worker too): the export task is registered
from .services import start_export_job


@admin.action(description="Export listwise snapshot")
def export_listwise_snapshot(modeladmin, request, queryset):
    """One listwise export job per selected collection, default parameters; run by a worker."""
    for collection in queryset:
        snapshot = start_export_job(collection=collection, format="listwise", params={}, created_by=request.user)
        url = reverse("admin:annotate_exportsnapshot_change", args=[snapshot.pk])
        modeladmin.message_user(
            request, format_html('Export snapshot <a href="{}">#{}</a> of {} queued.', url, snapshot.pk, collection.slug),
            messages.SUCCESS)


class SimulatedAnnotatorFilter(admin.SimpleListFilter):
    """Judgments by simulated annotators vs by people (imported labels have no annotator)."""

    title = "annotator kind"
    parameter_name = "simulated"

    def lookups(self, request, model_admin):
        return [("yes", "simulated annotators"), ("no", "real annotators")]

    def queryset(self, request, queryset):
        simulated = AnnotatorProfile.objects.filter(is_simulated=True).values("user_id")
        if self.value() == "yes":
            return queryset.filter(annotator_id__in=simulated)
        if self.value() == "no":
            return queryset.by_people().exclude(annotator_id__in=simulated)
        return queryset


@admin.register(ExportSnapshot)
class ExportSnapshotAdmin(admin.ModelAdmin):
    list_display = ("id", "collection", "format", "split", "status", "size_bytes", "n_judgments", "created_by",
                    "created_at", "file_link")
    list_filter = ("status", "format", "split")
    list_select_related = ("collection", "created_by")
    readonly_fields = [f.name for f in ExportSnapshot._meta.fields] + ["file_link"]
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request):
        return False  # made by an export (download, job, command), never by hand

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="file")
    def file_link(self, snapshot):
        if snapshot.status != ExportSnapshot.Status.DONE:
            return "-"
        return format_html('<a href="{}">download</a>', reverse("api-export-file", kwargs={"snapshot_id": snapshot.pk}))
