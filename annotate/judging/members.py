"""Who takes part: adding members, removing them (which gives back the work they hold), and what
each one has done."""
from __future__ import annotations

from statistics import median

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.utils.translation import gettext

from ..models import AgreementReport, Collection, Judgment, Lease, Membership
from . import assignment


class MemberError(ValueError):
    """A member that cannot be added; the message names the problem."""


@transaction.atomic
def add_member(*, collection: Collection, username: str, password: str = "",
               role: str = Membership.Role.ANNOTATOR) -> Membership:
    """Make ``username`` a member of ``collection``. An unknown username is created as an account
    when a password is given (checked by the password validators), else refused."""
    username = (username or "").strip()
    if not username:
        raise MemberError("username: " + gettext("required"))
    if role not in Membership.Role.values:
        raise MemberError("role: " + gettext("must be one of %(roles)s, got %(role)r") % {
            "roles": ", ".join(Membership.Role.values), "role": role})
    users = get_user_model()
    user = users.objects.filter(username=username).first()
    if user is None:
        if not password:
            raise MemberError("username: " + gettext("no account %(name)r; give a password to create it") % {"name": username})
        _check_new_account(users, username, password)
        user = users.objects.create_user(username=username, password=password)
    elif password:
        raise MemberError("password: " + gettext("account %(name)r exists; its password is not changed here") % {
            "name": username})
    membership, created = Membership.objects.get_or_create(collection=collection, user=user, defaults={"role": role})
    if not created:
        raise MemberError("username: " + gettext("%(name)r is already a member of %(collection)s") % {
            "name": username, "collection": collection.slug})
    return membership


def _check_new_account(users, username: str, password: str) -> None:
    """The validators' own (translated) messages, each under the field it is about."""
    for field, check in (("username", lambda: users.username_validator(username)),
                         ("password", lambda: validate_password(password, users(username=username)))):
        try:
            check()
        except ValidationError as error:
            raise MemberError(f"{field}: {' '.join(error.messages)}") from None


@transaction.atomic
def remove_member(*, collection: Collection, user) -> int:
    """Remove `user` from `collection`: their active leases, pinned ones included, are released so
    others can be handed that work; their judgments stay. Returns how many leases were released."""
    released = assignment.release_all(collection=collection, annotator=user)
    Membership.objects.filter(collection=collection, user=user).delete()
    return released


def member_figures(collection: Collection) -> list[dict]:
    """Per member: grades given, median seconds per grade, last grade, open leases, and the
    reliability the latest agreement report derived for them (None before one)."""
    members = list(Membership.objects.filter(collection=collection).select_related("user").order_by("user__username"))
    ids = [m.user_id for m in members]
    grades = {row["annotator_id"]: row for row in (
        Judgment.objects.grades().filter(collection=collection, annotator_id__in=ids)
        .values("annotator_id").annotate(n=Count("pk"), last=Max("updated_at")))}
    seconds: dict[int, list[float]] = {}
    for annotator_id, spent in (Judgment.objects.grades().filter(collection=collection, annotator_id__in=ids,
                                                                 seconds_spent__isnull=False)
                                .values_list("annotator_id", "seconds_spent")):
        seconds.setdefault(annotator_id, []).append(spent)
    leases = dict(Lease.objects.filter(collection=collection, annotator_id__in=ids, status=Lease.Status.ACTIVE)
                  .values("annotator_id").annotate(n=Count("pk")).values_list("annotator_id", "n"))
    report = AgreementReport.objects.latest_for(collection)
    reliability = {entry.get("annotator_id"): entry.get("reliability")
                   for entry in (report.per_annotator if report else None) or [] if isinstance(entry, dict)}
    return [{
        "membership": m, "user": m.user, "grades": grades.get(m.user_id, {}).get("n", 0),
        "last": grades.get(m.user_id, {}).get("last"),
        "median_seconds": median(seconds[m.user_id]) if seconds.get(m.user_id) else None,
        "open_leases": leases.get(m.user_id, 0), "reliability": reliability.get(m.user_id),
    } for m in members]
