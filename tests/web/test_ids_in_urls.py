"""An id in a URL is at most 18 digits (config/converters.py): a longer number is no route (404),
never a database overflow (SQLite raised OverflowError, a 500, for /api/tasks/<huge>/...)."""
from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/tasks/{n}/annotations/", "/api/training-runs/{n}/", "/api/exports/{n}/"])
def test_an_id_wider_than_the_column_is_not_found(client, staff_user, path):
    client.force_login(staff_user)
    too_wide = "2035103277639712394144907264"
    response = client.post(path.format(n=too_wide), {}, content_type="application/json") if "annotations" in path \
        else client.get(path.format(n=too_wide))
    assert response.status_code == 404
    widest = "9" * 18  # still an id: the view answers (not found, as no such row exists)
    response = client.get(path.format(n=widest)) if "annotations" not in path else \
        client.post(path.format(n=widest), {}, content_type="application/json")
    assert response.status_code in (400, 404)


def test_ids_still_reverse_into_urls():
    assert reverse("api-training-run", args=[42]) == "/api/training-runs/42/"
