"""The admin: every changelist renders, big tables are never counted in full, judgments stay put."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotate import admin_paging
from annotate.models import (
    AnnotatorProfile,
    Candidate,
    ImportJob,
    Judgment,
    JudgmentRevision,
    Lease,
)

MODELS = ["collection", "membership", "annotatorprofile", "document", "query", "candidate", "judgment",
          "judgmentrevision", "lease", "importjob"]


@pytest.fixture
def rows(collection, member, staff_user):
    """At least one row of every model the admin shows."""
    candidate = Candidate.objects.filter(collection=collection).select_related("query").first()
    judgment = Judgment.objects.create(collection=collection, candidate=candidate, annotator=member, grade=2,
                                       guideline_version="v1")
    JudgmentRevision.objects.create(judgment=judgment, changed_by=member, old_grade=None, new_grade=2)
    for other in Candidate.objects.filter(collection=collection):
        Judgment.objects.create(collection=collection, candidate=other, source="qrels:qrels.tsv", grade=3)
    Lease.objects.create(collection=collection, query=candidate.query, annotator=member, items=[candidate.pk])
    AnnotatorProfile.objects.create(user=member, is_simulated=True)
    ImportJob.objects.create(collection=collection, created_by=staff_user)
    return {"judgment": judgment, "candidate": candidate}


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_renders_for_a_superuser(as_staff, rows, model, django_assert_max_num_queries):
    url = reverse(f"admin:annotate_{model}_changelist")
    as_staff.get(url)
    with django_assert_max_num_queries(7):  # a fixed number, however many rows are listed
        response = as_staff.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


@pytest.mark.parametrize("query", ["q=d0", "q=q0", "q=ann1", "q=qrels:qrels.tsv", "q=1", "collection__id__exact={c}"])
def test_searches_and_filters_render(as_staff, rows, query):
    query = query.format(c=rows["candidate"].collection_id)
    for model in ("document", "query", "candidate", "judgment", "lease", "membership"):
        response = as_staff.get(reverse(f"admin:annotate_{model}_changelist") + "?" + query)
        assert response.status_code == 200, (model, query)


def test_a_search_by_document_id_finds_its_candidates(as_staff, rows):
    document = rows["candidate"].document
    response = as_staff.get(reverse("admin:annotate_candidate_changelist"), {"q": document.external_id})
    found = list(response.context["cl"].result_list)
    assert found and all(candidate.document_id == document.pk for candidate in found)


def test_judgments_filter_by_people_and_imported_sources(as_staff, rows):
    url = reverse("admin:annotate_judgment_changelist")
    people = as_staff.get(url, {"source": "people"}).context["cl"].result_list
    qrels = as_staff.get(url, {"source": "qrels"}).context["cl"].result_list
    assert [j.annotator_id is not None for j in people] == [True]
    assert len(qrels) == 6 and {j.source for j in qrels} == {"qrels:qrels.tsv"}


def test_judgment_page_shows_its_revisions_read_only(as_staff, rows):
    judgment = rows["judgment"]
    response = as_staff.get(reverse("admin:annotate_judgment_change", args=[judgment.pk]))
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    inline = response.context["inline_admin_formsets"][0]
    assert inline.opts.model is JudgmentRevision and len(inline.formset.queryset) == 1
    assert not inline.has_add_permission and not inline.has_delete_permission


@pytest.mark.parametrize("model", ["judgment", "judgmentrevision", "candidate", "document", "query", "collection"])
def test_nothing_that_holds_judgments_can_be_deleted(as_staff, rows, model):
    target = {"judgment": rows["judgment"], "candidate": rows["candidate"], "document": rows["candidate"].document,
              "query": rows["candidate"].query, "collection": rows["candidate"].collection,
              "judgmentrevision": rows["judgment"].revisions.first()}[model]
    before = Judgment.objects.count()
    response = as_staff.post(reverse(f"admin:annotate_{model}_delete", args=[target.pk]), {"post": "yes"})
    assert response.status_code == 403
    changelist = as_staff.get(reverse(f"admin:annotate_{model}_changelist"))
    assert "delete_selected" not in dict(changelist.context["cl"].model_admin.get_actions(changelist.wsgi_request))
    assert Judgment.objects.count() == before


def _uncapped_counts(queries) -> list[str]:
    """COUNT queries that are not over a LIMITed subquery: a full count of a (filtered) table."""
    return [q["sql"] for q in queries
            if re.search(r"COUNT\(", q["sql"], re.I) and not re.search(r"\bLIMIT\b", q["sql"], re.I)]


@pytest.mark.parametrize("query", ["", "?collection__id__exact={c}", "?source=people", "?q=ann1"])
def test_judgment_changelist_never_counts_the_whole_table(as_staff, rows, django_assert_max_num_queries, query):
    url = reverse("admin:annotate_judgment_changelist") + query.format(c=rows["candidate"].collection_id)
    as_staff.get(url)  # warm the session and content types
    with django_assert_max_num_queries(6), CaptureQueriesContext(connection) as captured:
        response = as_staff.get(url)
    assert response.status_code == 200
    assert not _uncapped_counts(captured.captured_queries), _uncapped_counts(captured.captured_queries)


def test_past_the_cap_the_page_says_so_instead_of_counting(as_staff, rows, monkeypatch):
    monkeypatch.setattr(admin_paging.CappedCountPaginator, "cap", 2)
    response = as_staff.get(reverse("admin:annotate_document_changelist"))
    cl = response.context["cl"]
    assert cl.paginator.is_capped and cl.result_count == 3  # cap + 1: "more than 2", not the real 6
    assert "counted up to 2" in response.content.decode()
