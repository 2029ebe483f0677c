"""The whole loop through the browser only, in real Chromium, with a real Celery worker (#16):
staff import files, add an annotator, start mining; the annotator judges a query with the keyboard;
staff open quality, export, start training, read the promotion decision and its reason, ask for the
machine judge, and use the search preview. Screenshots of the pages (English and Chinese text) are checked not blank, and
no request of the whole walk is answered 5xx."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from django.conf import settings

from ..conftest import WorkerProcess
from ..training_loop.conftest import make_tiny_model
from .conftest import login
from .test_judging_page import assert_not_blank

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FILLER = [f"w{i}" for i in range(40)]
MARKERS = {3: "best", 2: "good", 1: "meh"}


def loop_files(directory: Path) -> dict[str, Path]:
    """8 queries (one Chinese) over 40 documents; qrels grade 3 documents by the marker words in them."""
    corpus, queries, qrels = [], [], []
    for q in range(8):
        text = "南京旅游必去景点" if q == 0 else f"query q{q} w{q}"
        queries.append({"_id": f"q{q}", "text": text})
        for d in range(5):
            grade = [3, 2, 1, 0, 0][d]
            words = [f"w{q}", *FILLER[(q * 5 + d) % 30:(q * 5 + d) % 30 + 4]]
            if grade:
                words.insert(1, MARKERS[grade])
            body = ("南京的景点有中山陵和夫子庙 " if q == 0 and grade else "") + " ".join(words)
            corpus.append({"_id": f"d{q}-{d}", "title": f"doc {q}-{d}", "text": body})
            if d < 3:  # some judged, the rest left for mining
                qrels.append(f"q{q}\td{q}-{d}\t{grade}")
    paths = {"corpus": directory / "corpus.jsonl", "queries": directory / "queries.jsonl",
             "qrels": directory / "qrels.tsv"}
    paths["corpus"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in corpus), encoding="utf-8")
    paths["queries"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in queries), encoding="utf-8")
    paths["qrels"].write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n", encoding="utf-8")
    return paths


def shot(page, name: str) -> None:
    page.wait_for_function("document.fonts.status === 'loaded'")
    assert_not_blank(page.screenshot(full_page=True), Path(settings.BASE_DIR) / "var" / "screenshots" / f"loop-{name}.png")


def wait_text(page, selector: str, values: tuple[str, ...], *, timeout_s: float = 120) -> str:
    """Reload ``page`` until ``selector``'s text is one of ``values`` (pages that refresh themselves
    are reloaded here too, so the wait does not depend on their timer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = page.locator(selector).first.inner_text().strip()
        if text in values:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} still {text!r} after {timeout_s} s")
        page.wait_for_timeout(1000)
        page.reload()


def test_staff_and_an_annotator_run_the_whole_loop_from_the_browser(page, live_server, staff_user, redis_url,
                                                                   tmp_path, settings):
    tiny = make_tiny_model(tmp_path / "tiny-bert")
    settings.BASE_MODEL_DIR = tiny  # the search preview in this process; the worker gets it below
    worker = WorkerProcess(redis_url=redis_url, data_dir=settings.DATA_DIR, log=tmp_path / "worker.log")
    worker.env["BASE_MODEL_DIR"] = str(tiny)
    worker.start()
    server_errors: list[str] = []
    page.on("response", lambda r: server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    try:
        files = loop_files(tmp_path)
        # Staff: import the files into a new collection.
        login(page, "staff", "staff-pass-123")
        page.click("text=Import data")
        page.fill("input[name=collection]", "loop")
        for field, path in files.items():
            page.set_input_files(f"input[name={field}]", str(path))
        page.click("button:has-text('Import')")
        page.wait_for_url("**/imports/*/")
        page.wait_for_function("document.getElementById('job-status').textContent === 'done'", timeout=60_000)

        # Add an annotator (a new account) on the members page.
        page.goto("/c/loop/members/")
        page.fill("#id_username", "loop-ann")
        page.fill("#id_password", "loop-annotator-pass-1")
        page.click("#add-member-form button[type=submit]")
        page.wait_for_selector('tr[data-member="loop-ann"]')

        # Start mining from the mining page; the job page follows it to the end.
        page.click(".collection-nav >> text=Mining")
        page.select_option("#id_method", "bm25")
        page.fill("#id_depth", "10")
        page.fill("#id_negatives", "2")
        page.click("#start-mining-form button[type=submit]")
        page.wait_for_url("**/mining/jobs/*/")
        page.wait_for_function("document.querySelector('[data-field=status]').textContent === 'done'", timeout=60_000)
        shot(page, "mining-en")

        # The annotator judges one query with the keyboard.
        page.click("#log-out")
        login(page, "loop-ann", "loop-annotator-pass-1")
        page.goto("/c/loop/guidelines/?lang=zh")
        page.click("#acknowledge")
        page.goto("/c/loop/judge/?lang=zh")
        page.wait_for_selector("#workbench")
        shot(page, "judge-zh")
        count = page.locator(".candidate").count()
        for _ in range(count):
            page.keyboard.press("2")
        page.wait_for_function("document.getElementById('save-state').textContent === 'saved'")
        page.keyboard.press("Enter")
        page.wait_for_selector("#next-dialog[open]")  # finished and saved; stay on the page
        page.keyboard.press("Escape")

        # Staff: quality, export, training, the decision, the search preview.
        page.click("#log-out")
        login(page, "staff", "staff-pass-123")
        page.goto("/c/loop/quality/")
        page.click("button:has-text('Recompute')")
        page.wait_for_selector("#overall")
        shot(page, "quality-en")

        page.click(".collection-nav >> text=Exports")
        page.select_option("#id_format", "listwise")
        page.click("#export-form button[type=submit]")
        wait_text(page, "#snapshots tbody tr td:nth-child(3)", ("done", "failed"))
        assert "done" in page.locator("#snapshots tbody tr").first.inner_text()
        assert page.locator("#snapshots tbody tr code").first.get_attribute("title")  # the sha256
        page.click("text=train on it")
        page.wait_for_selector("#start-run-form")
        page.fill("#id_epochs", "2")
        page.fill("#id_min_dev_queries", "1")
        page.click("#start-run-form button[type=submit]")
        page.wait_for_url(re.compile(r".*/c/loop/training/\d+/(#.*)?$"))
        status = wait_text(page, "[data-field=status]", ("done", "failed"), timeout_s=240)
        assert status == "done", worker.output()[-3000:]
        reason = page.locator("[data-field=reason]").inner_text()
        assert reason.startswith(("promoted", "not promoted")), reason
        assert page.locator("#candidates tbody tr").count() >= 2
        shot(page, "run-en")

        # The machine judge from the training page: asked for, run by the worker, recorded there.
        page.click(".collection-nav >> text=Training")
        if page.locator("#judge-now button").is_enabled():  # a promotion may have queued one already
            page.click("#judge-now button")
            page.wait_for_selector("text=Machine judge queued with")
        judged = wait_text(page, "#machine-judge tbody tr [data-field=status]", ("done", "failed", "cancelled"))
        assert judged == "done", worker.output()[-3000:]
        row = page.locator("#machine-judge tbody tr").first.inner_text()
        # this collection's few people's grades are too few to calibrate on: the row says so
        assert "people's grades on train queries; the calibration needs at least 30" in row, row
        shot(page, "judge-run-en")

        page.click(".collection-nav >> text=Search preview")
        page.fill("input[name=q]", "南京旅游")
        page.click("button:has-text('Search')")
        page.wait_for_selector(".served-by")
        assert page.locator("table.results tbody tr").count() >= 1
        shot(page, "search-en")

        # The same staff pages in Chinese, chosen once with the switch in the header.
        page.click("#language-switch button[value=zh-hans]")
        page.wait_for_selector(".collection-nav >> text=训练")
        shot(page, "search-zh")
        page.click(".collection-nav >> text=概览")
        page.wait_for_selector("text=标注进度")
        shot(page, "overview-zh")
        page.click(".collection-nav >> text=训练")
        page.click("table.results tbody tr >> nth=0 >> a >> nth=0")  # the run just made
        page.wait_for_selector("text=训练损失")
        # the same decision, worded in Chinese from its figures (the stored sentence is English)
        worded = page.locator("[data-field=reason]").inner_text()
        assert worded.startswith(("已上线", "未上线", "验证查询不足")), worded
        assert re.search(r"\d", worded) and not worded.startswith(("promoted", "not promoted"))
        shot(page, "run-zh")
    finally:
        worker.stop()
    assert server_errors == []
