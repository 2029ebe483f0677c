"""Every visible text of the templates goes through the translation machinery (#16), and the judging
page speaks the language its user chose."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from annotate.models import GuidelineAcknowledgement

TEMPLATES = Path(settings.BASE_DIR) / "templates"

# Never translated: the product's name, languages named in their own language, technical tokens.
ALLOWED = ("Relevance Studio", "English", "API", "NDCG@10", "BM25", "JSONL", "CSV", "TSV", "sha256")
_ALLOWED = re.compile("|".join(rf"(?<![\w@]){re.escape(token)}(?![\w@])" for token in ALLOWED))

# Parts of a template no reader sees as interface text, or already translated: whole
# blocktranslate blocks, comments, scripts and styles, and code/key names shown as they are typed.
_NOT_INTERFACE = [re.compile(pattern, re.S) for pattern in (
    r"{%\s*blocktranslate\b.*?{%\s*endblocktranslate\s*%}",
    r"{#.*?#}",
    r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}",
    r"<script\b.*?</script>", r"<style\b.*?</style>",
    r"<code\b.*?</code>", r"<kbd\b.*?</kbd>",
)]
_TEMPLATE_CODE = re.compile(r"{%.*?%}|{{.*?}}", re.S)  # translate tags included: they leave no text behind
_TAG = re.compile(r"<[/!]?(\w+)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.S)
_ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_VISIBLE_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt"}
_ENTITY = re.compile(r"&#?\w+;")
_GAP = "\x00"  # where template code was: text on either side is not one sentence


def _is_english(text: str) -> bool:
    return re.search(r"[A-Za-z]{2,}", _ALLOWED.sub(" ", text)) is not None


def _visible_attributes(tag: str, attributes: str):
    values = {name.lower(): a if a is not None else b for name, a, b in _ATTRIBUTE.findall(attributes)}
    for name, value in values.items():
        if name in _VISIBLE_ATTRIBUTES or (name == "value" and tag == "input"
                                            and values.get("type", "").lower() in ("submit", "button", "reset")):
            yield name, value


def untranslated_text(source: str) -> list[str]:
    """The visible English of one template that no translate tag covers: 'text' or 'attr="text"'."""
    for pattern in _NOT_INTERFACE:
        source = pattern.sub(" ", source)
    source = _TEMPLATE_CODE.sub(_GAP, source)
    found = []
    for match in _TAG.finditer(source):
        for name, value in _visible_attributes(match.group(1).lower(), match.group(2)):
            if _is_english(value.replace(_GAP, " ")):
                found.append(f'{name}="{value.replace(_GAP, "…")}"')
    for chunk in _TAG.sub(_GAP, source).split(_GAP):
        text = " ".join(_ENTITY.sub(" ", chunk).split())
        if _is_english(text):
            found.append(text)
    return found


def _interface_templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*.html") if p.relative_to(TEMPLATES).parts[0] != "admin")


@pytest.mark.parametrize("template", _interface_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_visible_english_outside_translate_tags(template):
    found = untranslated_text(template.read_text(encoding="utf-8"))
    assert not found, f"{template.relative_to(TEMPLATES)}: English outside translate tags: {found}"


@pytest.mark.parametrize("source, found", [
    ('<h1>Collections</h1>', ["Collections"]),
    ('<h1>{% translate "Collections" %}</h1>', []),
    ('<p>{% blocktranslate with n=k %}Every {{ n }} grades{% endblocktranslate %}</p>', []),
    ('<input placeholder="why">', ['placeholder="why"']),
    ('<input type="submit" value="Save">', ['value="Save"']),
    ('<option value="listwise">{% translate "Listwise" %}</option>', []),
    ('<title>{% translate "Log in" %} · Relevance Studio</title>', []),
    ('<p><code>python manage.py mine</code> · <kbd>Enter</kbd> · NDCG@10 · BM25</p>', []),
    ('<span>{{ a }} of {{ b }}</span>', ["of"]),
])
def test_the_check_finds_english_and_only_english(source, found):
    assert untranslated_text(source) == found


@pytest.fixture
def judging_annotator(client, collection, member):
    """The member of the 'web' collection, signed in, guideline read: the judging page opens at once."""
    GuidelineAcknowledgement.objects.create(user=member, version=collection.guideline_version)
    client.force_login(member)
    return client


GRADE_NAMES = {"en": ["irrelevant", "marginal", "relevant", "highly relevant"],
               "zh-hans": ["不相关", "低相关", "中等相关", "高相关"]}


def _grade_buttons(html: str) -> list[str]:
    return re.findall(r'data-grade="\d">\d ([^<]*)</button>', html)


@pytest.mark.django_db
def test_a_user_who_chose_chinese_judges_with_chinese_labels(judging_annotator):
    judging_annotator.post("/accounts/language/", {"language": "zh-hans", "next": "/"})
    html = judging_annotator.get("/c/web/judge/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert _grade_buttons(html)[:4] == GRADE_NAMES["zh-hans"]
    assert "完成本查询（Enter）" in html and "本任务" in html and "快捷键" in html
    assert "Finish query" not in html and "irrelevant" not in html


@pytest.mark.django_db
def test_an_english_user_judges_with_english_labels_only(judging_annotator):
    judging_annotator.post("/accounts/language/", {"language": "en", "next": "/"})
    html = judging_annotator.get("/c/web/judge/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert _grade_buttons(html)[:4] == GRADE_NAMES["en"]
    assert "Finish query (Enter)" in html and "Keyboard" in html
    interface = re.sub(r"<aside.*?</aside>", "", html, flags=re.S).replace("中文", "")  # guideline text, language switch
    assert not re.search(r"[\u4e00-\u9fff]", interface)
