"""What a refused or lost visitor sees and what the log says (#16 finding 6)."""
from __future__ import annotations

import pytest
from django.test import override_settings

from annotate.models import Collection, Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotator(client, django_user_model):
    user = django_user_model.objects.create_user("plain-annotator", password="pw")
    collection = Collection.objects.create(slug="c403", name="C403")
    Membership.objects.create(collection=collection, user=user)
    client.force_login(user)
    return user


def test_a_403_page_names_the_reason_and_offers_a_way_back(client, annotator):
    response = client.get("/c/c403/quality/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "is for staff only" in html  # the reason the view gave
    assert 'href="/"' in html and "/accounts/login/?next=/c/c403/quality/" in html
    assert "plain-annotator" in html


def test_a_404_page_has_a_way_back(client, annotator):
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and 'href="/"' in response.content.decode()


@pytest.mark.parametrize("debug", [True, False])
def test_a_403_is_logged_once_without_a_traceback(client, annotator, debug):
    """Through the handlers settings.LOGGING configured (their output read from a swapped stream):
    under DEBUG, Django's own console handler on "django" used to print every record a second time."""
    import io
    import logging

    streams = [h for h in logging.getLogger().handlers + logging.getLogger("django").handlers
               if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               and type(h).__module__ == "logging"]
    assert streams, "the console handler of settings.LOGGING is gone"
    captured = io.StringIO()
    previous = [h.setStream(captured) for h in streams]
    try:
        with override_settings(DEBUG=debug):
            assert client.get("/c/c403/quality/").status_code == 403
    finally:
        for handler, stream in zip(streams, previous):
            handler.setStream(stream)
    logged = captured.getvalue()
    assert logged.count("Forbidden (Permission denied): /c/c403/quality/") == 1, logged
    assert "Traceback" not in logged


def test_a_server_error_keeps_its_traceback():
    import logging

    from config.log_filters import ClientErrorsWithoutTraceback

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        info = sys.exc_info()
    for status, kept in ((500, True), (403, False)):
        record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "x", (), info)
        record.status_code = status
        assert ClientErrorsWithoutTraceback().filter(record)
        assert (record.exc_info is not None) is kept


def test_favicon_is_served(client):
    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/img/favicon.svg"
    assert "<svg" in open(finders.find("img/favicon.svg"), encoding="utf-8").read()
