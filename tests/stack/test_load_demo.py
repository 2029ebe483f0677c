"""`manage.py load_demo`: the demo collection, three accounts, printed logins; safe to run again."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotate.demo import DEMO_FILE

# The importer lands in parallel (issue 2, point 3); until it does there is nothing to load with.
pytest.importorskip("annotate.importing", reason="annotate.importing (the importer) is not in this checkout yet")

from annotate.management.commands.load_demo import DEMO_ACCOUNTS  # noqa: E402
from annotate.models import Candidate, Collection, Document, Judgment, Membership, Query  # noqa: E402

pytestmark = pytest.mark.django_db
SOURCE = f"labels:{DEMO_FILE.name}"


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def file_grades() -> dict[tuple[str, str], int]:
    grades = {}
    for line in DEMO_FILE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for candidate in row["candidates"]:
            grades[(row["query_id"], candidate["doc_id"])] = candidate["label"]
    return grades


def totals() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (Document, Query, Candidate, Judgment, Membership)}


def test_it_creates_the_demo_collection_with_every_reference_label():
    load_demo()

    demo = Collection.objects.get(slug="demo")
    assert demo.name == "Demo: bilingual search" and demo.overlap_k == 2
    stored = {
        (j.candidate.query.external_id, j.candidate.document.external_id): j.grade
        for j in Judgment.objects.filter(collection=demo).select_related("candidate__query", "candidate__document")
    }
    assert stored == file_grades()
    assert set(Judgment.objects.values_list("source", flat=True)) == {SOURCE}
    assert not Judgment.objects.filter(annotator__isnull=False).exists()
    assert Query.objects.filter(collection=demo).count() == len({q for q, _ in file_grades()})


def test_it_creates_an_admin_and_two_annotators_of_the_demo_collection_and_prints_their_logins():
    output = load_demo()

    users = {u.username: u for u in get_user_model().objects.all()}
    assert users["admin"].is_staff and users["admin"].is_superuser
    for account in DEMO_ACCOUNTS:
        assert users[account.username].check_password(account.password)
        assert f"| {account.username} " in output and account.password in output
    for name in ("annotator1", "annotator2"):
        assert not users[name].is_staff
        assert Membership.objects.filter(collection__slug="demo", user=users[name], role="annotator").exists()
    assert not Membership.objects.filter(user=users["admin"]).exists()  # staff see every collection anyway


def test_running_it_again_changes_nothing():
    load_demo()
    first = totals()
    load_demo()
    assert totals() == first
    assert Collection.objects.filter(slug="demo").count() == 1


def test_an_existing_account_keeps_its_password(django_user_model):
    django_user_model.objects.create_user("annotator1", password="my-own-password")

    output = load_demo()

    user = django_user_model.objects.get(username="annotator1")
    assert user.check_password("my-own-password")
    assert "annotator1-demo" not in output and "(changed; not shown)" in output
    assert Membership.objects.filter(collection__slug="demo", user=user).exists()


@pytest.mark.django_db
def test_the_demo_is_loaded_with_its_judging_order_computed():
    from annotate.management.commands.load_demo import load_demo
    from annotate.models import Candidate, Query

    load_demo()
    assert Query.objects.filter(collection__slug="demo").count() > 10
    assert not Query.objects.filter(collection__slug="demo", order_stale=True).exists()
    assert not Candidate.objects.filter(collection__slug="demo", is_gold=False, priority__isnull=True).exists()
