"""A training run's page in real Chromium: staff see the candidates and promote a run the gate
held back with "Promote anyway" and a reason."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from annotate.models import Collection
from training import registry
from training.models import TrainingRun

from ..training_loop.test_run_page import finished_run, metrics_now
from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOT = Path(os.environ.get("RUN_PAGE_SCREENSHOT", "/tmp/run_page.png"))


def test_staff_promote_a_held_back_run_from_its_page(page, staff_user):
    collection = Collection.objects.create(slug="rpb", name="Run page")
    run = finished_run(collection, metrics_now(dev=12, gain=0.1))
    login(page, "staff", "staff-pass-123")
    page.goto(f"/c/{collection.slug}/training/")
    page.click(f"a[href='/c/{collection.slug}/training/{run.pk}/']")
    page.wait_for_selector("#candidates table")
    assert page.locator("#candidates tbody tr").count() == 3
    assert "not enough dev queries (12)" in page.inner_text("#decision")
    fusion = page.inner_text("#candidates tr[data-candidate='fusion']")
    assert "[" in fusion and "not enough dev queries" in fusion

    page.click("button:has-text('Promote anyway')")  # empty: the browser's required check holds it
    assert page.url.endswith(f"/training/{run.pk}/") and not TrainingRun.objects.get(pk=run.pk).promoted
    page.screenshot(path=str(SCREENSHOT.with_name("run_page_form.png")), full_page=True)
    page.fill("textarea[name=reason]", "First fifty queries; the fusion is plainly better on them.")
    page.click("button:has-text('Promote anyway')")
    page.wait_for_selector("[data-field=override]")
    assert page.inner_text("[data-field=promoted]") == "yes"
    assert "First fifty queries" in page.inner_text("#decision")
    assert page.locator("textarea[name=reason]").count() == 0
    assert registry.promoted_version(collection=collection).run_id == run.pk

    shot = page.screenshot(full_page=True)
    SCREENSHOT.write_bytes(shot)
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(shot)).convert("RGB")
    assert image.width >= 1200 and max(ImageStat.Stat(image).stddev) > 20, "screenshot looks blank"


def test_api_docs_render_in_chromium_with_no_network_beyond_the_server(page, live_server, django_user_model):
    """Swagger UI from the app's own static files: every request that leaves 127.0.0.1 is blocked
    and recorded, and the docs still show the API's title and its operations."""
    from urllib.parse import urlparse

    django_user_model.objects.create_user("docs-reader", password="docs-reader-pw")
    outside: list[str] = []

    def local_only(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    login(page, "docs-reader", "docs-reader-pw")
    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Relevance Studio API" in page.locator(".swagger-ui .info .title").inner_text()
    page.wait_for_selector(".opblock-summary")
    assert page.locator(".opblock-summary").count() > 20
    assert outside == []
