"""The judging pages: the guideline to acknowledge, then one task at a time."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ..access import collection_for_member
from ..models import GuidelineAcknowledgement
from . import assignment, selectors
from .guidelines import GuidelineMissing, language_for
from .guidelines import render as render_guideline


def _guideline_html(collection, request):
    language = language_for(request.GET.get("lang") or request.LANGUAGE_CODE)
    try:
        return render_guideline(collection.guideline_version, language), language
    except GuidelineMissing as exc:
        return None, str(exc)


@login_required
@require_GET
def judge(request, slug: str):
    collection = collection_for_member(request.user, slug)
    if selectors.needs_acknowledgement(request.user, collection):
        return redirect(reverse("guidelines", args=[slug]) + "?next=judge")
    lease = assignment.next_task(collection=collection, annotator=request.user)
    if lease is None:
        return render(request, "annotate/nothing_left.html", {"collection": collection})
    payload = selectors.task_payload(lease, language=request.GET.get("lang") or request.LANGUAGE_CODE)
    guideline_html, guideline_language = _guideline_html(collection, request)
    return render(request, "annotate/judge.html", {
        "collection": collection, "lease": lease, "task": payload,
        "guideline_html": guideline_html, "guideline_language": guideline_language,
    })


@login_required
@require_GET
def guidelines(request, slug: str):
    collection = collection_for_member(request.user, slug)
    guideline_html, language = _guideline_html(collection, request)
    return render(request, "annotate/guidelines.html", {
        "collection": collection, "guideline_html": guideline_html, "language": language,
        "acknowledged": not selectors.needs_acknowledgement(request.user, collection),
    })


@login_required
@require_POST
def acknowledge_guidelines(request, slug: str):
    collection = collection_for_member(request.user, slug)
    GuidelineAcknowledgement.objects.get_or_create(user=request.user, version=collection.guideline_version)
    return redirect("judge", slug=slug)
