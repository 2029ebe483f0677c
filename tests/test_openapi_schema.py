"""The served OpenAPI schema is valid and generates without warnings (clients and fuzzers read it)."""
import pytest
from django.core.management import call_command


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/tasks/{task_id}/judgments/" in text and "/api/collections/{slug}/imports/" in text


@pytest.mark.django_db
def test_schema_is_served_to_logged_in_users(client, annotator):
    assert client.get("/api/schema/").status_code == 403
    client.force_login(annotator)
    response = client.get("/api/schema/")
    assert response.status_code == 200 and b"openapi" in response.content
