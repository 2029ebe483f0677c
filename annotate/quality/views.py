"""Staff pages: the quality dashboard and adjudication. Everyone else gets 403 (anonymous: login)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..access import staff_collection
from ..grades import GRADE_MAX, GRADE_MIN, GRADES
from ..models import AgreementReport, Candidate, Query
from . import selectors
from .adjudication import (
    AdjudicationError,
    adjudicate,
    disagreements,
    needs_adjudication,
    query_sheet,
)
from .overview import overview as collection_overview
from .report import store_report
from .tasks import recompute_report


@login_required
@require_GET
def overview(request, slug: str):
    collection = staff_collection(request.user, slug, "the collection overview")
    return render(request, "annotate/overview.html", {"collection": collection, **collection_overview(collection)})


@login_required
@require_GET
def dashboard(request, slug: str):
    collection = staff_collection(request.user, slug, "quality control")
    return render(request, "annotate/quality.html", {"collection": collection, **selectors.dashboard(collection)})


# Up to this many grades a report takes about a second: computed in the request. Above, queued.
INLINE_REPORT_LIMIT = 100_000


@login_required
@require_POST
def recompute(request, slug: str):
    collection = staff_collection(request.user, slug, "quality control")
    if selectors.people_grade_count(collection) <= INLINE_REPORT_LIMIT:
        report = store_report(collection=collection)
        messages.info(request, gettext("A new agreement report was computed (%(seconds).2f s).") % {"seconds": report.seconds})
    else:
        transaction.on_commit(lambda: recompute_report.delay(collection.pk, min_new=0))
        messages.info(request, gettext("A new agreement report is being computed; reload in a minute."))
    return redirect("quality-dashboard", slug=slug)


@login_required
@require_GET
def adjudication_queue(request, slug: str):
    collection = staff_collection(request.user, slug, "quality control")
    return render(request, "annotate/adjudication_queue.html", {
        "collection": collection, "queries": needs_adjudication(collection),
        "disagreements": disagreements(collection),
    })


@login_required
@require_http_methods(["GET", "POST"])
def adjudication_query(request, slug: str, query_id: int):
    collection = staff_collection(request.user, slug, "quality control")
    query = get_object_or_404(Query, pk=query_id, collection=collection)
    if request.method == "POST":
        candidate = get_object_or_404(Candidate, pk=request.POST.get("candidate") or 0, query=query)
        try:
            grade = int(request.POST.get("grade", ""))
        except ValueError:
            messages.error(request, gettext("choose a final grade %(low)s..%(high)s") % {"low": GRADE_MIN, "high": GRADE_MAX})
        else:
            try:
                adjudicate(candidate=candidate, grade=grade, reason=request.POST.get("reason", ""),
                           decided_by=request.user)
                messages.success(request, gettext("Final grade %(grade)s set for %(document)s; it replaces every other grade of this pair in the "
                                             "export.") % {"grade": grade, "document": candidate.document.external_id})
            except AdjudicationError as error:
                messages.error(request, str(error))
        return redirect("adjudication-query", slug=slug, query_id=query.pk)
    annotators, sheets = query_sheet(query)
    report = AgreementReport.objects.latest_for(collection)
    alpha = next((e.get("alpha_ordinal") for e in (report.per_query if report else []) or []
                  if isinstance(e, dict) and e.get("query_id") == query.pk), None)
    return render(request, "annotate/adjudication_query.html", {
        "collection": collection, "query": query, "annotators": annotators, "sheets": sheets, "alpha": alpha,
        "grades": GRADES,
    })
