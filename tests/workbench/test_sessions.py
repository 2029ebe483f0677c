"""Sessions (config/sessions.py): database sessions read with one SQL statement, same behaviour."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from .factories import make_annotators, make_collection

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotator():
    collection = make_collection(queries=1, candidates=2, k=1)
    (user,) = make_annotators(collection, 1)
    return user


def test_a_signed_in_request_reads_its_session_in_one_plain_statement(client, annotator):
    client.force_login(annotator)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/c/c1/guidelines/").status_code == 200  # a member's page: signed in
    session_reads = [q["sql"] for q in queries if "django_session" in q["sql"]]
    assert len(session_reads) == 1 and session_reads[0].startswith("SELECT session_data FROM django_session")


def test_logging_out_ends_the_session_everywhere(client, annotator):
    client.force_login(annotator)
    key = client.cookies["sessionid"].value
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies["sessionid"] = key  # replaying the old cookie gets nobody in
    assert client.post("/api/collections/c1/tasks/next/", content_type="application/json").status_code == 403


def test_an_expired_session_signs_nobody_in(client, annotator):
    client.force_login(annotator)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert client.post("/api/collections/c1/tasks/next/", content_type="application/json").status_code == 403
