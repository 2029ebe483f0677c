"""`python manage.py load_demo`: the demo collection and three demo accounts (run by `make run`).

Safe to run again: the collection is updated in place (the importer is idempotent), accounts
that already exist keep their passwords, memberships are not duplicated.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotate.demo import DEMO_FILE
from annotate.importing import import_files
from annotate.judging.priorities import refresh_all
from annotate.models import Collection, Membership

DEMO_SLUG = "demo"
DEMO_NAME = "Demo: bilingual search"
DEMO_OVERLAP_K = 2


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str  # published on purpose: these accounts exist for local trials only
    role: str
    is_staff: bool = False


DEMO_ACCOUNTS = (
    DemoAccount("admin", "admin-demo", "staff, superuser", is_staff=True),
    DemoAccount("annotator1", "annotator1-demo", "annotator of 'demo'"),
    DemoAccount("annotator2", "annotator2-demo", "annotator of 'demo'"),
)


class Command(BaseCommand):
    help = "Create or update the bilingual demo collection and the demo accounts, then print the logins."

    def handle(self, *args, **options):
        totals, users = load_demo()
        self.stdout.write(
            f"Collection '{DEMO_SLUG}' ({DEMO_NAME}): {totals['queries']} queries, {totals['documents']} documents, "
            f"{totals['candidates']} candidates, {totals['judgments']} reference labels"
        )
        self.stdout.write(format_logins(users))


@transaction.atomic
def load_demo() -> tuple[dict, dict]:
    """Import the demo file and ensure the demo accounts; return the totals and the users by name."""
    collection, _ = Collection.objects.update_or_create(
        slug=DEMO_SLUG, defaults={"name": DEMO_NAME, "overlap_k": DEMO_OVERLAP_K}
    )
    totals = import_files(collection_slug=collection.slug, labels=[DEMO_FILE])
    refresh_all(collection)  # the judging order, as an import job computes it
    users = {}
    for account in DEMO_ACCOUNTS:
        users[account.username] = user = ensure_account(account)
        if not account.is_staff:
            Membership.objects.get_or_create(
                collection=collection, user=user, defaults={"role": Membership.Role.ANNOTATOR}
            )
    return totals, users


def ensure_account(account: DemoAccount):
    """Create the account if missing. An existing account is left exactly as it is."""
    User = get_user_model()
    user = User.objects.filter(username=account.username).first()
    if user is not None:
        return user
    if account.is_staff:
        return User.objects.create_superuser(account.username, email="", password=account.password)
    return User.objects.create_user(account.username, password=account.password)


def format_logins(users: dict) -> str:
    """A small table of the demo logins; a password someone changed is not shown."""
    rows = [("user", "password", "role")]
    for account in DEMO_ACCOUNTS:
        user = users[account.username]
        password = account.password if user.check_password(account.password) else "(changed; not shown)"
        rows.append((account.username, password, account.role))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = ["Demo logins (local development only):", line]
    for index, row in enumerate(rows):
        out.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
        if index == 0:
            out.append(line)
    out.append(line)
    return "\n".join(out)
