"""The admin, built to stay usable with millions of candidates and judgments.

Every list over a big table: pages counted up to a cap (annotate/admin_paging.py) and no full
result count or filter facets (both are a COUNT(*) over the table); related rows fetched in the
same query (list_select_related); foreign keys edited as raw ids (no <select> of a million options);
searches that are exact-id equalities or indexed sub-selects, never LIKE over document texts;
sorting only by the primary key.

Nothing that holds judgments can be deleted here (a collection, document, query or candidate
cascades into its judgments), and judgments, revisions, leases and import jobs are read-only:
they change only through their services, which keep revisions and coverage counts right.
"""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from .admin_paging import CappedCountPaginator
from .export.admin import SimulatedAnnotatorFilter, export_listwise_snapshot
from .judging.members import remove_member
from .models import (
    AnnotatorProfile,
    Candidate,
    Collection,
    Document,
    ImportJob,
    Judgment,
    JudgmentRevision,
    Lease,
    Membership,
    Query,
)
from .quality.admin_actions import gold_actions


class BigTableAdmin(admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    sortable_by = ("id",)

    def search_condition(self, term: str) -> Q:
        """The rows a search term finds; a number also finds the row with that id."""
        return Q()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = self.search_condition(term)
        if term.isdigit():
            condition |= Q(pk=int(term))
        return queryset.filter(condition), False


class ReadOnlyAdmin(BigTableAdmin):
    """Rows written only by services (judging, assignment, import): shown, never edited here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _users_named(term: str):
    return get_user_model().objects.filter(username=term).values("pk")


class SourceListFilter(admin.SimpleListFilter):
    """People's judgments vs imported labels, by prefix — listing the distinct sources would scan
    the whole judgment table."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return [("people", "people"), ("qrels", "qrels files"), ("labels", "labelled files")]

    def queryset(self, request, queryset):
        if self.value() == "people":
            return queryset.by_people()
        if self.value() in ("qrels", "labels"):
            return queryset.filter(annotator__isnull=True, source__startswith=f"{self.value()}:")
        return queryset


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "overlap_k", "lease_minutes", "guideline_version", "judging_view", "is_active",
                    "created_at")
    list_filter = ("is_active", "judging_view")
    actions = [export_listwise_snapshot]
    search_fields = ("slug", "name")
    readonly_fields = ("corpus_version", "created_at")
    show_facets = admin.ShowFacets.NEVER

    def has_delete_permission(self, request, obj=None):
        return False  # would cascade into its judgments; deactivate it instead (is_active)


@admin.register(Membership)
class MembershipAdmin(BigTableAdmin):
    list_display = ("id", "collection", "user", "role", "joined_at")
    list_filter = ("collection", "role")
    list_select_related = ("collection", "user")
    raw_id_fields = ("user",)
    search_fields = ("user__username",)
    search_help_text = "exact username"

    def search_condition(self, term):
        return Q(user__in=_users_named(term))

    # Removing a member goes through the service, which releases the work they hold.
    def delete_model(self, request, obj):
        remove_member(collection=obj.collection, user=obj.user)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("collection", "user"):
            remove_member(collection=membership.collection, user=membership.user)


@admin.register(AnnotatorProfile)
class AnnotatorProfileAdmin(BigTableAdmin):
    list_display = ("id", "user", "is_simulated")
    list_filter = ("is_simulated",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    search_fields = ("user__username",)
    search_help_text = "exact username"

    def search_condition(self, term):
        return Q(user__in=_users_named(term))


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    """Read-only: texts change by re-import, which keeps content_hash and corpus_version (the
    cache key of BM25 indexes and embeddings) right."""

    list_display = ("id", "external_id", "collection", "short_title", "updated_at")
    list_filter = ("collection",)
    list_select_related = ("collection",)
    search_fields = ("=external_id",)
    search_help_text = "exact document id (or row id)"

    def search_condition(self, term):
        return Q(external_id=term)

    @admin.display(description="title")
    def short_title(self, document):
        return Truncator(document.title or document.text).chars(80)


@admin.register(Query)
class QueryAdmin(ReadOnlyAdmin):
    list_display = ("id", "external_id", "collection", "short_text", "split", "holders")
    list_filter = ("collection", "split")
    list_select_related = ("collection",)
    search_fields = ("=external_id", "text")
    search_help_text = "exact query id, or words in the query text"

    def search_condition(self, term):
        # Query texts are short and queries far fewer than documents: a contains-search is fine.
        return Q(external_id=term) | Q(text__icontains=term)

    @admin.display(description="text")
    def short_text(self, query):
        return Truncator(query.text).chars(80)


@admin.register(Candidate)
class CandidateAdmin(BigTableAdmin):
    list_display = ("id", "collection", "query", "document", "source_names", "is_gold", "gold_grade", "coverage")
    list_filter = ("collection", "is_gold")
    list_select_related = ("collection", "query", "document")
    raw_id_fields = ("query", "document")
    readonly_fields = ("collection", "query", "document", "sources", "coverage", "offers", "guard", "created_at")
    fields = ("collection", "query", "document", "sources", "is_gold", "gold_grade", "coverage", "offers", "guard",
              "created_at")
    search_fields = ("=query__external_id", "=document__external_id")
    search_help_text = "exact query or document id (or row id)"
    actions = gold_actions

    def search_condition(self, term):
        # Sub-selects by id, so the candidate side is read through its query/document indexes.
        return (Q(query__in=Query.objects.filter(external_id=term).values("pk"))
                | Q(document__in=Document.objects.filter(external_id=term).values("pk")))

    @admin.display(description="sources")
    def source_names(self, candidate):
        return ", ".join(sorted(candidate.sources or {}))

    def has_add_permission(self, request):
        return False  # candidates come from import and mining

    def has_delete_permission(self, request, obj=None):
        return False  # would cascade into its judgments


class JudgmentRevisionInline(admin.TabularInline):
    model = JudgmentRevision
    fields = ("changed_at", "changed_by", "changed_by_source", "old_grade", "new_grade", "old_skipped",
              "new_skipped", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("changed_by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Judgment)
class JudgmentAdmin(ReadOnlyAdmin):
    """Read-only: a grade changes only through annotate/judging/services.py, which records its revision."""

    list_display = ("id", "collection", "candidate", "who", "grade", "skipped", "flagged", "withdrawn",
                    "guideline_version", "created_at")
    list_filter = ("collection", SourceListFilter, SimulatedAnnotatorFilter, "skipped", "flagged", "withdrawn", "grade")
    list_select_related = ("collection", "candidate", "annotator")
    inlines = [JudgmentRevisionInline]
    search_fields = ("=annotator__username", "=source", "=candidate__id")
    search_help_text = "exact username, source (e.g. qrels:qrels.tsv) or candidate id"

    def search_condition(self, term):
        condition = Q(annotator__in=_users_named(term)) | Q(annotator__isnull=True, source=term)
        if term.isdigit():
            condition |= Q(candidate_id=int(term))
        return condition

    @admin.display(description="by")
    def who(self, judgment):
        return judgment.annotator.username if judgment.annotator_id else judgment.source


@admin.register(JudgmentRevision)
class JudgmentRevisionAdmin(ReadOnlyAdmin):
    list_display = ("id", "judgment", "changed_at", "changed_by", "changed_by_source", "old_grade", "new_grade",
                    "reason")
    list_select_related = ("judgment", "changed_by")
    search_fields = ("=judgment__id",)
    search_help_text = "judgment id (or revision id)"

    def search_condition(self, term):
        return Q(judgment_id=int(term)) if term.isdigit() else Q(pk__in=[])


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    """Read-only: leases move through annotate/judging/assignment.py, which keeps coverage counts right."""

    list_display = ("id", "collection", "query", "annotator", "status", "pinned", "acquired_at", "expires_at",
                    "finished_at")
    list_filter = ("collection", "status", "pinned")
    list_select_related = ("collection", "query", "annotator")
    search_fields = ("=annotator__username", "=query__external_id")
    search_help_text = "exact username or query id"

    def search_condition(self, term):
        return (Q(annotator__in=_users_named(term))
                | Q(query__in=Query.objects.filter(external_id=term).values("pk")))


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "collection", "status", "created_by", "percent", "created_at", "finished_at", "page")
    list_filter = ("collection", "status")
    list_select_related = ("collection", "created_by")
    search_fields = ("=collection__slug",)
    search_help_text = "collection slug or job id"

    def search_condition(self, term):
        return Q(collection__slug=term)

    @admin.display(description="progress")
    def percent(self, job):
        return f"{job.progress:.0%}"

    @admin.display(description="job page")
    def page(self, job):
        return format_html('<a href="{}">open</a>', reverse("import-job", args=[job.pk]))
