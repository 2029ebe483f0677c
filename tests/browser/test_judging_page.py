"""The judging page in real Chromium: keyboard-only judging, undo, skip, reload, EN and ZH screenshots."""
from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from annotate.models import Candidate, Collection, Document, Judgment, Membership, Query

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ENGLISH = ("how to make pizza dough", [
    "Mix flour, water, yeast and salt, knead for ten minutes and let the pizza dough rise for an hour.",
    "Pizza dough needs strong flour; a long cold rise gives it flavour.",
    "The history of Naples includes many bakeries.",
    "Buy our kitchen scales today! Free shipping.",
])
CHINESE = ("南京旅游必去景点", [
    "南京旅游必去的景点有中山陵、夫子庙和玄武湖，中山陵建议早上去。",
    "南京的天气四季分明，夏天炎热。",
    "北京旅游攻略：故宫、长城和颐和园。",
    "南京大排档的盐水鸭很有名。",
])


def make_collection(slug: str, query_text: str, texts: list[str], user) -> Collection:
    collection = Collection.objects.create(slug=slug, name=slug.upper(), overlap_k=2)
    query = Query.objects.create(collection=collection, external_id="q1", text=query_text, content_hash="h")
    for i, text in enumerate(texts):
        document = Document.objects.create(collection=collection, external_id=f"d{i}", text=text, content_hash=str(i))
        Candidate.objects.create(collection=collection, query=query, document=document)
    Membership.objects.create(collection=collection, user=user)
    return collection


@pytest.fixture
def annotator_user(db):
    return get_user_model().objects.create_user("ann-browser", password="ann-browser-pass")


def wait_saved(page):
    page.wait_for_function("document.getElementById('save-state').textContent === 'saved'")


def grades_of(user) -> dict[str, object]:
    rows = Judgment.objects.filter(annotator=user).select_related("candidate__document")
    return {j.candidate.document.external_id: ("skip" if j.skipped else j.grade) for j in rows if not j.withdrawn}


def wait_grades(user, expected: dict, timeout: float = 10.0) -> None:
    """Poll the database until the annotator's standing grades are `expected` (saves are async)."""
    deadline = time.monotonic() + timeout
    while (current := grades_of(user)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert current == expected


def focused_doc(page) -> str:
    candidate_id = page.evaluate("document.querySelector('.candidate.focused').dataset.id")
    return Candidate.objects.get(pk=candidate_id).document.external_id


def assert_not_blank(png: bytes, path: Path) -> None:
    from PIL import Image, ImageStat

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.size[0] > 600 and image.size[1] > 400
    spread = ImageStat.Stat(image).stddev[0]
    assert spread > 10, f"screenshot {path} looks blank (pixel stddev {spread:.1f})"
    assert len(set(image.resize((64, 64)).get_flattened_data())) > 8


def test_judge_a_whole_query_with_the_keyboard_undo_skip_and_reload(page, annotator_user):
    make_collection("en", *ENGLISH, annotator_user)
    login(page, "ann-browser", "ann-browser-pass")
    page.goto("/c/en/judge/")
    assert "/c/en/guidelines/" in page.url  # the guideline comes first
    page.focus("#acknowledge")
    page.keyboard.press("Enter")
    page.wait_for_selector("#workbench")
    assert page.locator(".candidate").count() == 4
    assert page.locator(".doc mark").count() > 0  # query terms are highlighted

    order = []
    for key in ("2", "1", "3"):
        order.append(focused_doc(page))
        page.keyboard.press(key)
    wait_grades(annotator_user, {order[0]: 2, order[1]: 1, order[2]: 3})

    page.keyboard.press("u")  # undo the last grade
    page.wait_for_function("document.getElementById('message').textContent === 'Undone.'")
    wait_grades(annotator_user, {order[0]: 2, order[1]: 1})
    assert focused_doc(page) == order[2]

    page.keyboard.press("s")  # skip with a reason
    page.keyboard.type("page is in the wrong language")
    page.keyboard.press("Enter")
    wait_grades(annotator_user, {order[0]: 2, order[1]: 1, order[2]: "skip"})
    wait_saved(page)

    page.reload()  # mid-task: the work is there
    page.wait_for_selector("#workbench")
    assert page.locator(".candidate .grade.selected").count() == 2
    assert page.locator(".candidate.skipped").count() == 1
    assert page.locator("#progress-task-text").inner_text() == "3 / 4"

    last = focused_doc(page)  # focus lands on the one still open
    assert last not in grades_of(annotator_user)
    page.keyboard.press("0")
    wait_grades(annotator_user, {order[0]: 2, order[1]: 1, order[2]: "skip", last: 0})
    wait_saved(page)
    page.keyboard.press("Enter")  # finish the query: the page asks before loading the next
    page.wait_for_selector("#next-dialog[open]")
    assert page.locator("h1.query").inner_text() == ENGLISH[0]  # still this query
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Nothing left to judge")
    assert len(grades_of(annotator_user)) == 4
    seconds = list(Judgment.objects.filter(annotator=annotator_user).values_list("seconds_spent", flat=True))
    assert all(s is not None and s >= 0 for s in seconds)


def test_enter_with_open_candidates_says_what_is_missing(page, annotator_user):
    make_collection("en", *ENGLISH, annotator_user)
    login(page, "ann-browser", "ann-browser-pass")
    page.goto("/c/en/guidelines/")
    page.click("#acknowledge")
    page.wait_for_selector("#workbench")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('message').textContent.includes('3 candidate(s) still need')")
    page.keyboard.press("?")
    assert page.locator("#help-dialog").is_visible()


@pytest.mark.parametrize("slug, language, query", [("en", "en", ENGLISH), ("zh", "zh", CHINESE)])
def test_judging_page_screenshots_are_not_blank(page, annotator_user, slug, language, query):
    make_collection(slug, *query, annotator_user)
    login(page, "ann-browser", "ann-browser-pass")
    page.goto(f"/c/{slug}/guidelines/?lang={language}")
    page.click("#acknowledge")
    page.goto(f"/c/{slug}/judge/?lang={language}")
    page.wait_for_selector("#workbench")
    page.wait_for_function("document.fonts.status === 'loaded'")
    if language == "zh":
        # A CJK font is installed and used: the query's glyphs are not drawn as empty boxes.
        assert page.evaluate("document.fonts.check('20px \"Noto Sans CJK SC\"', '南京旅游')")
        assert "南京" in page.locator("h1.query").inner_text()
        assert page.locator(".guideline").inner_text().count("相关") > 2
    path = Path(settings.BASE_DIR) / "var" / "screenshots" / f"judging-{language}.png"
    assert_not_blank(page.screenshot(full_page=True), path)


def test_a_grade_answered_with_500_stays_queued_says_not_saved_and_is_stored_after_the_retry(page, annotator_user):
    """The server's first answer to a grade is a 500 (the browser sees exactly what a crashed view
    sends): the grade must not be dropped -- the page says "not saved" until the retry, which uses
    the same idempotency key, stores it once."""
    make_collection("en", *ENGLISH, annotator_user)
    login(page, "ann-browser", "ann-browser-pass")
    page.goto("/c/en/guidelines/")
    page.click("#acknowledge")
    page.wait_for_selector("#workbench")

    sent_keys: list[str] = []
    failed = []

    def first_fails(route):
        sent_keys.append(route.request.post_data_json["idempotency_key"])
        if not failed:
            failed.append(True)
            route.fulfill(status=500, content_type="text/html", body="<h1>Server Error (500)</h1>")
        else:
            route.continue_()

    page.route("**/judgments/", first_fails)
    first = focused_doc(page)
    page.keyboard.press("2")
    page.wait_for_function("document.getElementById('save-state').textContent.startsWith('not saved')")
    assert "HTTP 500" in page.locator("#save-state").inner_text()
    queued = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('rs-pending-'))"
                           ".map(k => JSON.parse(localStorage.getItem(k)).length)")
    assert queued == [1]  # kept in the queue, not dropped
    # Playwright's sync API runs the route handler only while the test waits on the page.
    wait_saved(page)  # the retry (backoff 1 s) went through
    wait_grades(annotator_user, {first: 2})
    assert len(sent_keys) == 2 and sent_keys[0] == sent_keys[1]  # the same key: stored once
    assert Judgment.objects.filter(annotator=annotator_user).count() == 1

    # A grade typed while an earlier one waits queues behind it and both reach the server in order.
    failed.clear()
    second = focused_doc(page)
    page.keyboard.press("3")
    page.wait_for_function("document.getElementById('save-state').textContent.startsWith('not saved')")
    third = focused_doc(page)
    page.keyboard.press("1")
    wait_saved(page)
    wait_grades(annotator_user, {first: 2, second: 3, third: 1})
    page.reload()
    page.wait_for_selector("#workbench")
    assert page.locator(".candidate .grade.selected").count() == 3



def test_the_query_stays_in_view_and_escape_after_finishing_stays_on_the_page(page, annotator_user):
    long_texts = [text + " " + " ".join(["filler words to make the document long"] * 60) for text in ENGLISH[1]]
    collection = make_collection("en", ENGLISH[0], long_texts, annotator_user)
    login(page, "ann-browser", "ann-browser-pass")
    page.goto("/c/en/guidelines/")
    page.click("#acknowledge")
    page.wait_for_selector("#workbench")
    # Progress: "Collection" counts the whole collection's grades of the k per candidate it needs.
    assert page.locator("#progress-overall-text").inner_text() == f"0 / {4 * collection.overlap_k}"
    for _ in range(4):
        page.keyboard.press("1")
    wait_saved(page)
    assert page.locator("#progress-overall-text").inner_text() == f"4 / {4 * collection.overlap_k}"
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    box = page.locator("h1.query").bounding_box()
    assert box is not None and 0 <= box["y"] < 900, box  # scrolled to the end, the query is on screen
    page.keyboard.press("Enter")
    page.wait_for_selector("#next-dialog[open]")
    page.keyboard.press("Escape")
    page.wait_for_function("document.getElementById('message').textContent.includes('Press Enter for the next one')")
    assert page.locator("h1.query").inner_text() == ENGLISH[0]
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Nothing left to judge")


def test_the_page_script_speaks_the_users_language(page, annotator_user):
    """The judging page's own messages (save state, what is missing) follow the user's chosen language."""
    from annotate.models import AnnotatorProfile

    AnnotatorProfile.objects.create(user=annotator_user, language="zh-hans")
    make_collection("zh", *CHINESE, annotator_user)
    login(page, "ann-browser", "ann-browser-pass")
    page.goto("/c/zh/guidelines/")
    page.click("#acknowledge")
    page.wait_for_selector("#workbench")
    page.keyboard.press("2")
    page.wait_for_function("document.getElementById('save-state').textContent === '已保存'")
    assert page.locator(".candidate .grade.g3").first.inner_text() == "3 高相关"  # Chinese only, no English beside
    page.keyboard.press("s")  # the skip dialog asks in Chinese too; Esc leaves the candidate open
    page.wait_for_selector("#text-dialog[open]")
    assert page.locator("#text-label").inner_text() == "为什么跳过这个候选？"
    page.keyboard.press("Escape")
    page.wait_for_selector("#text-dialog:not([open])", state="attached")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('message').textContent === '还有 3 个候选需要评分或跳过。'")
    assert page.locator("a:has-text('集合')").count() >= 1  # the header too
