"""Who may do what: the member and staff checks every app's pages and APIs use, written once.

- Staff manage everything: collections, imports, mining, quality, exports, training, the search
  preview. An annotator who is not staff gets 403 on those (anonymous visitors: the login page).
- A member of a collection judges in it; to anyone else the collection does not exist (404, no
  hint), staff excepted.
- Nobody works in another person's task, staff included (annotate/judging/selectors.py).
"""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext, gettext_noop
from rest_framework import permissions

from .models import Collection, GuidelineAcknowledgement, Membership

# What the views name as reserved for staff. Some pass the English name; marked here, it is in the
# catalogue, and the refusal names it in the reader's language (a name passed translated stays as it is).
THIS_PAGE = gettext_noop("this page")
STAFF_AREAS = (
    THIS_PAGE,
    gettext_noop("quality control"),
    gettext_noop("the collection overview"),
    gettext_noop("exports"),
    gettext_noop("mining jobs"),
    gettext_noop("mining settings"),
)


def is_staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_staff)


def require_staff(user, what: str = THIS_PAGE) -> None:
    """PermissionDenied (403) naming what is reserved for staff, unless `user` is staff."""
    if not is_staff(user):
        raise PermissionDenied(staff_only(what))


def staff_only(what: str) -> str:
    """The refusal's reason, in the active language: "quality control is for staff only"."""
    return gettext("%(what)s is for staff only") % {"what": gettext(what)}


def staff_required(what: str = THIS_PAGE):
    """View decorator: logged-in staff only; others are sent to log in, or get 403 (never the
    admin's login page)."""
    def decorator(view):
        @login_required
        @wraps(view)
        def guarded(request, *args, **kwargs):
            require_staff(request.user, what)
            return view(request, *args, **kwargs)

        return guarded

    return decorator


def staff_collection(user, slug: str, what: str = THIS_PAGE) -> Collection:
    """The collection for a staff page (403 for others, 404 for an unknown slug)."""
    require_staff(user, what)
    return get_object_or_404(Collection, slug=slug)


def is_member(user, collection: Collection) -> bool:
    """May `user` judge in `collection`: staff, or a member of it."""
    return is_staff(user) or Membership.objects.filter(collection=collection, user_id=user.pk).exists()


def collections_visible_to(user) -> QuerySet[Collection]:
    """Staff see every collection; annotators only the active ones they are members of."""
    if is_staff(user):
        return Collection.objects.all()
    return Collection.objects.filter(memberships__user=user, is_active=True)


def collection_for_member(user, slug: str) -> Collection:
    """The collection if the user may judge or manage it; 404 otherwise (no hint that it exists).

    One query: membership and the acknowledgement of the current guideline come along as flags
    (`is_member`, `guideline_acknowledged`), so the judging API's next-task call reads no more.
    """
    collection = (
        Collection.objects.filter(slug=slug)
        .annotate(
            is_member=Exists(Membership.objects.filter(collection=OuterRef("pk"), user_id=user.pk)),
            guideline_acknowledged=Exists(
                GuidelineAcknowledgement.objects.filter(user_id=user.pk, version=OuterRef("guideline_version"))
            ),
        )
        .first()
    )
    if collection is None or not (is_staff(user) or collection.is_member):
        raise Http404(gettext("no such collection"))
    return collection


class IsStaff(permissions.BasePermission):
    """DRF permission: logged-in staff (the same rule as the pages)."""

    def has_permission(self, request, view) -> bool:
        return is_staff(request.user)
