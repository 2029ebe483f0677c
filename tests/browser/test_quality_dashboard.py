"""The quality dashboard in real Chromium with simulated annotators: it draws, and the screenshot is not blank."""
from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command

from annotate.models import Candidate, Collection, Document, Judgment, Query
from annotate.quality.report import store_report

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def simulated_collection() -> Collection:
    """6 queries x 8 documents with reference grades, then 5 simulated annotators at 20% noise."""
    collection = Collection.objects.create(slug="qd", name="Quality demo", adjudication_alpha=0.6)
    for q in range(6):
        query = Query.objects.create(collection=collection, external_id=f"q{q}", text=f"query {q}", content_hash=str(q))
        for d in range(8):
            document = Document.objects.create(collection=collection, external_id=f"q{q}d{d}", text=f"doc {d}",
                                               content_hash=f"{q}{d}")
            candidate = Candidate.objects.create(collection=collection, query=query, document=document)
            Judgment.objects.create(collection=collection, candidate=candidate, source="qrels:test",
                                    grade=(q * 3 + d * 5) % 4)
    call_command("simulate_annotators", "qd", "--annotators", "5", "--noise", "0.2", "--seed", "3", verbosity=0)
    return collection


def test_dashboard_renders_with_simulated_annotators(page, staff_user):
    collection = simulated_collection()
    store_report(collection=collection, bootstrap=200)
    store_report(collection=collection, bootstrap=200)
    login(page, "staff", "staff-pass-123")
    page.goto(f"/c/{collection.slug}/quality/")
    page.wait_for_selector("#annotators")
    assert page.locator("svg.chart").count() == 3
    for chart in page.locator("svg.chart").all():
        box = chart.bounding_box()
        assert box["width"] > 200 and box["height"] > 100
    assert page.locator("#heatmap rect").count() >= 25  # 5 x 5 cells
    assert page.locator("#annotators tbody tr").count() == 5
    assert page.locator("#annotators small.tag").count() == 5  # every simulated annotator is marked
    shot = page.screenshot(full_page=True)
    out = settings.DATA_DIR / "quality_dashboard.png"
    out.write_bytes(shot)
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(shot)).convert("RGB")
    assert image.width >= 1200 and image.height > 900
    colours = image.resize((200, 200)).getcolors(maxcolors=200 * 200)
    assert colours is not None and len(colours) > 50, "screenshot looks blank"
    assert max(ImageStat.Stat(image).stddev) > 20
