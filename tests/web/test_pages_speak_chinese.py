"""A staff user and an annotator who chose Chinese read every page of a Chinese collection without
English prose (#16): what templates say is checked in test_templates_translated.py; this walks the
rendered pages, so the text Python writes -- model help texts and choice labels, overview and chart
wording, report labels, flags -- is read as the user reads it."""
from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse

from annotate.export import services as export_services
from annotate.importing import execute_import, start_import
from annotate.judging.guidelines import render as render_guideline
from annotate.models import (
    Candidate,
    Collection,
    GuidelineAcknowledgement,
    Judgment,
    Membership,
)
from annotate.quality.report import store_report
from mining.models import MiningJob

from .conftest import jsonl, qrels_tsv, upload

pytestmark = pytest.mark.django_db

SLUG = "zhlab"
CORPUS = [{"_id": f"d{i}", "title": f"第{i}篇", "text": text} for i, text in enumerate((
    "北京是中国的首都，有故宫和长城。", "上海是中国最大的城市之一。", "长城是古代修建的防御工程。",
    "熊猫生活在四川的山林里。", "饺子是北方常见的食物。", "春节是中国最重要的传统节日。"))]
QUERIES = [{"_id": "q1", "text": "中国的首都"}, {"_id": "q2", "text": "长城的历史"}]
QRELS = [("q1", "d0", 3), ("q1", "d1", 1), ("q1", "d4", 0), ("q2", "d2", 3), ("q2", "d0", 1), ("q2", "d5", 0)]

# Latin words a Chinese reader is still meant to see: names and formats, never words of prose.
NAMES = {"Relevance", "Studio",  # the product's name
         "English"}  # the language switch names each language in its own language
FORMATS = {"NDCG", "JSONL", "JSON", "TSV", "tsv", "API", "sha256", "BEIR", "TREC", "qrels",
           "CPU"}  # file formats, measures, protocols and hardware, written so in Chinese too
METHODS = {"listwise", "pointwise", "pairwise", "flagembedding", "jieba",  # export formats, a tokenizer
           "dense", "hybrid",  # mining methods, as the settings, the API and `mine --method` spell them
           "Krippendorff", "Cohen", "Fleiss", "Dawid", "Skene"}  # measures named after their authors
KEYS = {"Enter", "Esc"}  # keys, named as printed on the keyboard
OURS = {SLUG}  # ids this test created: data, shown as typed
ALLOWED = NAMES | FORMATS | METHODS | KEYS | OURS
# The import page spells out the columns of the TSV and TREC files, as a file must spell them.
IMPORT_COLUMNS = {"query", "corpus", "score", "qid", "docid", "grade", "rank", "tag", "run"}

# Not read as interface text: scripts and styles, code and keys shown as typed, comments.
_HIDDEN = re.compile(r"<!--.*?-->|<(script|style|code|kbd|pre)\b.*?</\1\s*>", re.S | re.I)
_TAG = re.compile(r"<[/!]?(\w+)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.S)
_ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_VISIBLE_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt"}
_LITERAL = re.compile(r'"[^"\n]*"')  # a JSON key or value quoted as an example: typed as it is
# A word runs over letters and digits; one joined by "_", "." or "/" is an identifier, a file or a
# path (manage.py, import_data, min_gold=, guidelines/, /srv/models/v3): code typed as it is.
_WORD = re.compile(r"/?[A-Za-z0-9_]+(?:[./][A-Za-z0-9_]+)*/?")


def visible_text(page: str) -> str:
    """What a reader sees of a page: its text and the attributes a browser shows."""
    page = _HIDDEN.sub(" ", page)
    shown = []
    for match in _TAG.finditer(page):
        attributes = {name.lower(): a or b for name, a, b in _ATTRIBUTE.findall(match.group(2))}
        shown += [value for name, value in attributes.items() if name in _VISIBLE_ATTRIBUTES]
        if match.group(1).lower() == "input" and attributes.get("type") in ("submit", "button"):
            shown.append(attributes.get("value", ""))
    return html_lib.unescape(" ".join([_TAG.sub(" ", page), *shown]))


def english_words(page: str, allowed: set[str] = frozenset()) -> list[str]:
    """Latin words of three letters or more outside the allow-list, in page order, once each."""
    words = (w for w in _WORD.findall(_LITERAL.sub(" ", visible_text(page)))
             if len(re.findall("[A-Za-z]", w)) >= 3 and not re.search(r"[_./]", w))
    return list(dict.fromkeys(w for w in words if w not in ALLOWED | allowed))


@pytest.mark.parametrize("page, found", [
    ('<p title="保存">保存 <code>python manage.py</code> Relevance Studio · NDCG@10</p>', []),
    ('<p aria-label="Close">关闭</p><!-- a comment -->', ["Close"]),
    ('<a href="/c/x/settings/" class="button">设置</a><svg><text>no reports yet</text></svg>',
     ["reports", "yet"]),
    ('<input type="submit" value="Save"><script>const label = "Saved";</script>', ["Save"]),
])
def test_the_check_reads_what_a_reader_sees(page, found):
    assert english_words(page) == found


@pytest.fixture
def zh_collection(django_user_model):
    """A Chinese collection: imported corpus, queries and qrels, two annotators' grades, a report."""
    manager = django_user_model.objects.create_user("管理员", password="pw", is_staff=True, is_superuser=True)
    Collection.objects.create(slug=SLUG, name="中文新闻检索", description="用于测试的中文集合", overlap_k=2)
    files = {"corpus": upload("语料.jsonl", jsonl(CORPUS)), "queries": upload("查询.jsonl", jsonl(QUERIES)),
             "qrels": upload("标注.tsv", qrels_tsv(QRELS))}
    job = start_import(collection_slug=SLUG, files=files, created_by=manager)
    assert execute_import(job_id=job.pk).status == "done"
    collection = Collection.objects.get(slug=SLUG)
    annotators = [django_user_model.objects.create_user(name, password="pw") for name in ("标注员甲", "标注员乙")]
    candidates = list(Candidate.objects.filter(collection=collection).order_by("pk"))
    for offset, annotator in enumerate(annotators):
        Membership.objects.create(collection=collection, user=annotator)
        # The last candidate is left for the judging page; the second annotator skips one more, so
        # Fleiss' kappa (equal judges per item) is undefined and the page says why.
        for index, candidate in enumerate(candidates[:-1 - offset]):
            Judgment.objects.create(collection=collection, candidate=candidate, annotator=annotator,
                                    grade=(index + offset * (index % 2)) % 4, seconds_spent=5.0)
    store_report(collection=collection, bootstrap=20)
    export_services.run_export_job(snapshot_id=export_services.create_snapshot(
        collection=collection, format="listwise").pk)
    return {"collection": collection, "manager": manager, "annotator": annotators[0], "import": job}


def _in_chinese(client, user):
    client.force_login(user)
    client.post("/accounts/language/", {"language": "zh-hans", "next": "/"})
    return client


def assert_no_english(client, urls: list[str], *, allowed_on: dict[str, set[str]] | None = None,
                      written: tuple[str, ...] = ()) -> None:
    """Every page answers and shows no English word, apart from `allowed_on` a page and from what
    people wrote (`written`: a guideline quotes English example queries). The failure lists every
    page with its words."""
    found = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        for text in written:
            page = page.replace(text, " ")
        words = english_words(page, (allowed_on or {}).get(url, set()))
        if words:
            found.append(f"{url}: {' '.join(words)}")
    assert not found, "English on pages read in Chinese:\n" + "\n".join(found)


def test_every_staff_page_of_a_chinese_collection_speaks_chinese(client, zh_collection):
    staff = _in_chinese(client, zh_collection["manager"])
    query = zh_collection["collection"].queries.order_by("pk").first()
    mining = MiningJob.objects.create(collection=zh_collection["collection"], method="hybrid", status="done",
                                      queries_total=2, queries_done=2, candidates_added=3,
                                      created_by=zh_collection["manager"], params={"depth": 5, "negatives": 2})
    urls = [reverse("home"), reverse("import-new"), reverse("import-job", args=[zh_collection["import"].pk]),
            reverse("mining-jobs") + f"?collection={SLUG}", reverse("mining-job", args=[mining.pk]),
            reverse("collection-new")]
    urls += [reverse(name, args=[SLUG]) for name in (
        "collection-overview", "members", "collection-settings", "quality-dashboard", "adjudication-queue",
        "mining-settings", "exports", "training-runs", "retrain-schedule", "search-preview")]
    urls += [reverse("search-preview", args=[SLUG]) + "?q=长城", reverse("adjudication-query", args=[SLUG, query.pk])]
    assert_no_english(staff, urls, allowed_on={reverse("import-new"): IMPORT_COLUMNS})
    quality = staff.get(reverse("quality-dashboard", args=[SLUG])).content.decode()
    assert "各条目的评分人数不同" in quality  # why Fleiss' kappa is undefined: stored in English, said in Chinese


def test_the_annotators_pages_of_a_chinese_collection_speak_chinese(client, zh_collection):
    annotator, version = zh_collection["annotator"], zh_collection["collection"].guideline_version
    reader = _in_chinese(client, annotator)
    guideline = render_guideline(version, "zh")
    assert_no_english(reader, [reverse("home"), reverse("guidelines", args=[SLUG])], written=(guideline,))
    GuidelineAcknowledgement.objects.create(user=annotator, version=version)
    assert_no_english(reader, [reverse("judge", args=[SLUG])], written=(guideline,))



@pytest.mark.parametrize("language, settings_words, quality_words", [
    ("zh-hans", ("每个候选由几位标注员评分。", "一次显示一个查询的全部候选"),
     ("历次报告的 Krippendorff α（有序），含 95% 置信区间", "Fleiss κ")),
    ("en", ("How many annotators judge each candidate.", "All candidates of a query at once"),
     ("Krippendorff&#x27;s alpha (ordinal) over reports, with 95% intervals", "Fleiss&#x27; kappa")),
])
def test_help_texts_choices_and_chart_titles_follow_the_users_language(client, zh_collection, language,
                                                                       settings_words, quality_words):
    client.force_login(zh_collection["manager"])
    client.post("/accounts/language/", {"language": language, "next": "/"})
    for url, words in ((reverse("collection-settings", args=[SLUG]), settings_words),
                       (reverse("quality-dashboard", args=[SLUG]), quality_words)):
        html = client.get(url).content.decode()
        assert all(word in html for word in words), (url, [word for word in words if word not in html])
