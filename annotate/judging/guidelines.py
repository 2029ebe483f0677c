"""The grading guidelines: versioned markdown under guidelines/<version>/<lang>.md, rendered safely."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

LANGUAGES = ("en", "zh")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class GuidelineMissing(Exception):
    pass


def guidelines_dir() -> Path:
    return Path(getattr(settings, "GUIDELINES_DIR", settings.BASE_DIR / "guidelines"))


def available_versions() -> list[str]:
    root = guidelines_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _VERSION.match(p.name))


def language_for(request_language: str | None) -> str:
    return "zh" if (request_language or "").lower().startswith("zh") else "en"


@lru_cache(maxsize=32)
def _render(path: Path, mtime: float) -> str:
    from markdown_it import MarkdownIt

    # html=False: the guideline text is data, any markup in it is shown, never run.
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(path.read_text(encoding="utf-8"))


def render(version: str, language: str = "en") -> SafeString:
    """HTML of one guideline version in one language (falls back to the other language)."""
    if not _VERSION.match(version or ""):
        raise GuidelineMissing(gettext("guideline version %(version)r is not a valid name") % {"version": version})
    order = [language] + [lang for lang in LANGUAGES if lang != language]
    for lang in order:
        path = guidelines_dir() / version / f"{lang}.md"
        if path.is_file():
            return mark_safe(_render(path, path.stat().st_mtime))  # noqa: S308 - rendered with html disabled
    raise GuidelineMissing(gettext("no guideline text for version %(version)r under %(folder)s") % {
        "version": version, "folder": guidelines_dir()})
