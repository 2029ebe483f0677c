"""Who takes part: removing a member from a collection gives back the work they hold."""
from __future__ import annotations

from django.db import transaction

from ..models import Collection, Membership
from . import assignment


@transaction.atomic
def remove_member(*, collection: Collection, user) -> int:
    """Remove `user` from `collection`: their active leases, pinned ones included, are released so
    others can be handed that work; their judgments stay. Returns how many leases were released."""
    released = assignment.release_all(collection=collection, annotator=user)
    Membership.objects.filter(collection=collection, user=user).delete()
    return released
