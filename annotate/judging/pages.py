"""The judging pages: the guideline to acknowledge, then one task at a time."""
from __future__ import annotations

import logging

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..access import collection_for_member, staff_collection
from ..models import GuidelineAcknowledgement, Membership
from . import assignment, members, selectors
from .guidelines import GuidelineMissing, language_for
from .guidelines import render as render_guideline

logger = logging.getLogger(__name__)


def _guideline_html(collection, request):
    language = language_for(request.GET.get("lang") or request.LANGUAGE_CODE)
    try:
        return render_guideline(collection.guideline_version, language), language
    except GuidelineMissing as exc:
        # The reason names a server folder: it goes to the log, the page says what the reader can act on.
        logger.warning("guideline of %s not shown: %s", collection.slug, exc)
        return None, gettext("No guideline text for version %(version)s: tell the collection's managers.") % {
            "version": collection.guideline_version}


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
        "guideline_html": guideline_html, "guideline_language": guideline_language, "ui_text": judge_text(),
    })


def judge_text() -> dict[str, str]:
    """What the judging page's script says, in the user's language (%(name)s filled in by the script)."""
    return {
        "saved": gettext("saved"), "saving": gettext("saving… %(n)s"),
        "offline": gettext("offline: %(n)s not saved, waiting"),
        "not_saved": gettext("not saved (%(why)s): %(n)s waiting, retrying"), "no_connection": gettext("no connection"),
        "refused": gettext("not saved (HTTP %(status)s)"), "skip_needs_reason": gettext("A skip needs a reason."),
        "grade_first": gettext("Grade or skip this candidate first, then flag it or add a note."),
        "undone": gettext("Undone."), "nothing_to_undo": gettext("Nothing to undo."),
        "finished_next": gettext("Query finished and saved. Press Enter for the next one."),
        "still_open": gettext("%(n)s candidate(s) still need a grade or a skip."),
        "not_saved_yet": gettext("Some grades are not saved yet; finishing when they are."),
        "could_not_finish": gettext("could not finish (HTTP %(status)s)"),
        "skipped": gettext("skipped"), "skipped_because": gettext("skipped: %(reason)s"),
        "why_skip": gettext("Why skip this candidate?"), "note": gettext("Note on this candidate"),
    }


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


class AddMemberForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), required=False, widget=forms.PasswordInput(render_value=False),
                               help_text=_("only to create a new account"))
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)


@login_required
@require_http_methods(["GET", "POST"])
def members_page(request, slug: str):
    """Staff: who judges in the collection, what each has done, add and remove members."""
    collection = staff_collection(request.user, slug, gettext("members"))
    form = AddMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = members.add_member(collection=collection, **form.cleaned_data)
        except members.MemberError as error:
            field, _sep, reason = str(error).partition(": ")
            form.add_error(field if field in form.fields else None, reason or str(error))
        else:
            messages.success(request, gettext("%(user)s is now a member (%(role)s).") % {
                "user": membership.user.username, "role": membership.get_role_display()})
            return redirect("members", slug=slug)
    return render(request, "annotate/members.html", {
        "collection": collection, "form": form, "rows": members.member_figures(collection)})


@login_required
@require_POST
def remove_member_page(request, slug: str, user_id: int):
    collection = staff_collection(request.user, slug, gettext("members"))
    user = get_object_or_404(get_user_model(), pk=user_id, memberships__collection=collection)
    released = members.remove_member(collection=collection, user=user)
    messages.success(request, gettext("%(user)s removed from %(collection)s; %(n)s open task(s) given back. Their grades stay.")
                     % {"user": user.username, "collection": collection.slug, "n": released})
    return redirect("members", slug=slug)
