"""The API answers JSON everywhere, with DEBUG on (what `make run` uses) as with it off: unknown
routes, oversized bodies, refusals. Before config.errors.ApiErrorsAsJson, DEBUG answered these
with Django's HTML debug pages, which list every URL pattern and the settings."""
from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db

BIG = 11 * 1024 * 1024  # over DATA_UPLOAD_MAX_MEMORY_SIZE (10 MB)


@pytest.fixture
def member(client, django_user_model):
    user = django_user_model.objects.create_user("json-errors", password="pw")
    client.force_login(user)
    return user


@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_api_route_answers_json_404(client, member, debug):
    with override_settings(DEBUG=debug):
        response = client.get("/api/no/such/route/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "No API route matches '/api/no/such/route/'."}


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("content_type, body", [
    ("application/json", b'{"query": "' + b"x" * BIG + b'"}'),
    ("application/x-www-form-urlencoded", b"query=" + b"x" * BIG),
])
def test_an_oversized_body_answers_json_400_naming_the_limit(client, member, debug, content_type, body):
    with override_settings(DEBUG=debug):
        response = client.post("/api/rerank/", data=body, content_type=content_type)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]


@override_settings(DEBUG=True)
def test_a_refusal_and_a_wrong_method_answer_json(client, member):
    client.logout()
    schema = client.get("/api/schema/")
    assert schema.status_code == 403 and schema["Content-Type"] == "application/json"
    assert schema.json()["detail"]
    client.force_login(member)
    wrong = client.delete("/api/rerank/")
    assert wrong.status_code == 405 and wrong.json()["detail"]


def test_anonymous_docs_go_to_the_login_page_and_the_docs_load_from_the_apps_own_files(client, member):
    client.logout()
    for page in ("/api/docs/", "/api/redoc/"):
        response = client.get(page)
        assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={page}"
    client.force_login(member)
    html = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert "/static/drf_spectacular_sidecar/redoc/" in client.get("/api/redoc/").content.decode()
