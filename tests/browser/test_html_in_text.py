"""Text that looks like HTML stays text: a query and documents carrying <script> and event-handler
markup are imported, then shown on the judging page (with the query-term highlighter), the
adjudication page and the admin. Each page must show the markup as visible text and run none of it."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotate.models import Collection, Membership, Query

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAME = "Pizza <img src=x onerror=alert(9)>"
QUERY = "pizza <img src=x onerror=alert(1)> dough"
DOCUMENTS = [
    "Pizza dough <script>window.__xss=1</script> needs strong flour.",
    "<img src=x onerror=\"window.__xss=2;alert(2)\"> pizza dough rises overnight.",
    "A <b>bold</b> claim about pizza & <a href=\"javascript:alert(3)\">dough</a>.",
    "<svg onload=alert(4)></svg> dough </textarea></div><script>alert(5)</script>",
]


@pytest.fixture
def imported(tmp_path):
    corpus, queries, run = tmp_path / "corpus.jsonl", tmp_path / "queries.jsonl", tmp_path / "run.trec"
    corpus.write_text("".join(json.dumps({"_id": f"d{i}", "title": "<i>t</i>", "text": text}) + "\n"
                              for i, text in enumerate(DOCUMENTS)))
    queries.write_text(json.dumps({"_id": "q1", "text": QUERY}) + "\n")
    run.write_text("".join(f"q1 Q0 d{i} {i + 1} {10 - i} bm25\n" for i in range(len(DOCUMENTS))))
    call_command("import_data", "html", "--corpus", str(corpus), "--queries", str(queries), "--run", str(run),
                 stdout=StringIO(), stderr=StringIO())
    collection = Collection.objects.get(slug="html")
    # Staff type the name and description in the admin: they are shown to annotators too.
    Collection.objects.filter(pk=collection.pk).update(name=NAME, description="<script>window.__xss=7</script>")
    User = get_user_model()
    annotator = User.objects.create_user("ann-html", password="ann-html-pass")
    User.objects.create_user("boss-html", password="boss-html-pass", is_staff=True, is_superuser=True)
    Membership.objects.create(collection=collection, user=annotator)
    return collection


def watch(page) -> list[str]:
    """Collect dialogs (alert/confirm/prompt) the page opens; dismiss them so nothing hangs."""
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def assert_inert(page, dialogs, where: str) -> None:
    page.wait_for_timeout(300)  # onerror of a broken <img> fires after load
    assert dialogs == [], f"{where}: a dialog opened: {dialogs}"
    assert page.evaluate("typeof window.__xss") == "undefined", f"{where}: injected script ran"
    assert page.locator("script:text('__xss')").count() == 0, f"{where}: a <script> from the data is in the DOM"
    assert page.locator("img[src=x], svg[onload], a[href^='javascript']").count() == 0, f"{where}: markup from the data rendered"


def test_judging_page_shows_html_in_documents_as_text_and_runs_none(page, imported):
    dialogs = watch(page)
    login(page, "ann-html", "ann-html-pass")
    page.goto("/")
    assert NAME in page.locator("body").inner_text()
    assert_inert(page, dialogs, "home page")
    page.goto("/c/html/guidelines/")
    page.focus("#acknowledge")
    page.keyboard.press("Enter")
    page.wait_for_selector("#workbench")
    assert page.locator(".candidate").count() == len(DOCUMENTS)
    text = page.locator("#workbench").inner_text()
    assert "<script>window.__xss=1</script>" in text
    assert '<img src=x onerror="window.__xss=2;alert(2)">' in text
    assert "<b>bold</b>" in text
    assert "<img src=x onerror=alert(1)>" in page.content().replace("&lt;", "<").replace("&gt;", ">")
    assert page.locator(".doc mark").count() > 0  # the highlighter still marks query terms
    assert_inert(page, dialogs, "judging page")


def test_adjudication_page_and_admin_show_html_as_text(page, imported):
    dialogs = watch(page)
    login(page, "boss-html", "boss-html-pass")
    query = Query.objects.get(collection=imported)
    page.goto(f"/c/html/adjudication/{query.pk}/")
    assert "<script>window.__xss=1</script>" in page.locator("body").inner_text()
    assert_inert(page, dialogs, "adjudication page")

    page.goto("/c/html/quality/")
    assert_inert(page, dialogs, "quality dashboard")
    page.goto("/admin/annotate/collection/")
    assert NAME in page.locator("#result_list").inner_text()
    assert_inert(page, dialogs, "admin collection list")
    page.goto("/admin/annotate/document/")
    assert_inert(page, dialogs, "admin document list")
    document = imported.documents.get(external_id="d0")
    page.goto(f"/admin/annotate/document/{document.pk}/change/")
    assert "<script>window.__xss=1</script>" in page.locator("#content").inner_text()
    assert_inert(page, dialogs, "admin document page")
    page.goto(f"/admin/annotate/query/{query.pk}/change/")
    assert_inert(page, dialogs, "admin query page")
    page.goto("/admin/annotate/candidate/")
    assert_inert(page, dialogs, "admin candidate list")
