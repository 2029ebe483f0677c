"""Background jobs on the pages: a status in the viewer's language, for the server and for the scripts."""
from __future__ import annotations

from django import template

from ..models.jobs import STATUS_WORDS, status_word

register = template.Library()


@register.filter
def job_status(status: str) -> str:
    """{{ job.status|job_status }}: "done" in English, "已完成" in Chinese."""
    return status_word(status)


@register.simple_tag
def job_status_words() -> dict[str, str]:
    """Every status code with its word, for a page whose script follows a job:
    {% job_status_words as words %}{{ words|json_script:"job-status-words" }}."""
    return {code: str(word) for code, word in STATUS_WORDS.items()}
