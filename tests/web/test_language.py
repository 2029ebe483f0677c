"""English and Simplified Chinese, chosen once and kept per user (#16 item 3)."""
from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings

from annotate.models import AnnotatorProfile

pytestmark = pytest.mark.django_db
CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"


def test_the_choice_is_kept_on_the_user_whatever_the_browser_says(client, django_user_model):
    user = django_user_model.objects.create_user("lang-user", password="pw")
    client.force_login(user)
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ">Collections</a>" in english and 'lang="en"' in english
    response = client.post("/accounts/language/", {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert AnnotatorProfile.objects.get(user=user).language == "zh-hans"
    client.cookies.clear()  # another device: no cookie, an English browser, the saved choice wins
    client.force_login(user)
    chinese = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ">集合</a>" in chinese and ">退出登录</button>" in chinese and 'lang="zh-hans"' in chinese
    client.post("/accounts/language/", {"language": "en", "next": "/"})
    assert ">Collections</a>" in client.get("/").content.decode()


def test_before_signing_in_the_choice_is_a_cookie(client):
    assert "<h1>Log in</h1>" in client.get("/accounts/login/").content.decode()
    client.post("/accounts/language/", {"language": "zh-hans", "next": "/accounts/login/"})
    assert "<h1>登录</h1>" in client.get("/accounts/login/").content.decode()


@pytest.mark.parametrize("language, next_url, status", [("fr", "/", 400), ("", "/", 400),
                                                         ("zh-hans", "https://evil.example/", 302)])
def test_a_bad_language_is_refused_and_an_outside_next_is_ignored(client, language, next_url, status):
    response = client.post("/accounts/language/", {"language": language, "next": next_url})
    assert response.status_code == status
    if status == 400:
        assert "language: must be one of en, zh-hans" in response.content.decode()
    else:
        assert response["Location"] == "/"


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}


def _unquoted(parts: list[str]) -> str:
    """The text of a PO string's quoted parts, escapes resolved (\\n, \\", \\\\ ...)."""
    joined = "".join(parts)
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), joined)


def _po_entries(path: Path) -> dict[str, str]:
    """{key: msgstr} of the catalogue's live singular entries, keyed as gettext looks them up:
    "<msgctxt>\\x04<msgid>" for an entry with a context (pgettext), the msgid otherwise."""
    entries, text = {}, path.read_text(encoding="utf-8")
    for block in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        current = None
        for line in block.split("\n"):
            if line.startswith("#"):
                continue  # comments, flags and obsolete (#~) entries
            keyword = re.match(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) ", line)
            if keyword:
                current = keyword.group(1)
                line = line[keyword.end():]
            if current is not None and line.startswith('"'):
                fields.setdefault(current, []).append(line[1:-1])
        if "msgid" not in fields:
            continue
        if "msgid_plural" in fields:  # a plural entry: checked by its first form (Chinese has one)
            fields["msgstr"] = fields.get("msgstr[0]", [])
        msgid = _unquoted(fields["msgid"])
        if msgid:
            key = f"{_unquoted(fields['msgctxt'])}\x04{msgid}" if "msgctxt" in fields else msgid
            entries[key] = _unquoted(fields.get("msgstr", []))
    return entries


def test_every_string_of_the_catalogue_is_translated_and_the_compiled_file_matches():
    entries = _po_entries(CATALOGUE / "django.po")
    assert len(entries) > 50
    assert [msgid for msgid, msgstr in entries.items() if not msgstr] == []
    with open(CATALOGUE / "django.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    catalog = compiled._catalog  # keys: msgid, "ctxt\x04msgid", or (msgid, n) for a plural's forms
    stale = [key for key, msgstr in entries.items() if catalog.get(key, catalog.get((key, 0))) != msgstr]
    assert stale == [], "django.mo is older than django.po: run msgfmt (README, Translations)"


def test_the_staff_pages_of_the_loop_speak_chinese_to_a_user_who_chose_it(client, staff_user):
    from django.urls import reverse

    from annotate.models import Collection

    Collection.objects.create(slug="zh", name="ZH")
    client.force_login(staff_user)
    client.post("/accounts/language/", {"language": "zh-hans", "next": "/"})
    for url, words in ((reverse("exports", args=["zh"]), ("开始导出", "格式", "还没有导出")),
                       (reverse("training-runs", args=["zh"]), ("开始训练", "模型版本")),
                       (reverse("retrain-schedule", args=["zh"]), ("定时重新训练", "间隔（小时）")),
                       (reverse("collection-settings", args=["zh"]), ("每个候选的标注员数（k）", "保存")),
                       (reverse("mining-jobs"), ("挖掘任务", "开始挖掘")),
                       (reverse("members", args=["zh"]), ("添加成员", "用户名")),
                       (reverse("collection-overview", args=["zh"]), ("标注进度", "一致性")),
                       (reverse("quality-dashboard", args=["zh"]), ("立即重新计算", "趋势")),
                       (reverse("adjudication-queue", args=["zh"]), ("评分相差两级及以上的候选",)),
                       (reverse("mining-settings", args=["zh"]), ("挖掘默认设置",))):
        html = client.get(url).content.decode()
        assert all(word in html for word in words), (url, [w for w in words if w not in html])


def test_what_the_pages_say_back_is_in_the_users_language_too(client, staff_user, django_user_model):
    from django.urls import reverse

    from annotate.models import Collection

    Collection.objects.create(slug="zh2", name="ZH2")
    django_user_model.objects.create_user("someone", password="pw")
    client.force_login(staff_user)
    client.post("/accounts/language/", {"language": "zh-hans", "next": "/"})
    url = reverse("members", args=["zh2"])
    refused = client.post(url, {"username": "ghost", "role": "annotator"}).content.decode()
    assert "没有账号 &#x27;ghost&#x27;；填写密码以创建" in refused
    added = client.post(url, {"username": "someone", "role": "annotator"}, follow=True).content.decode()
    assert "someone 已成为成员（标注员）" in added
    required = client.post(reverse("exports", args=["zh2"]), {"format": "listwise"}).content.decode()
    assert "该字段是必填项" in required  # Django's own messages come translated with Django
