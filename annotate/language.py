"""The interface language, chosen once and kept per user: English or Simplified Chinese.

Django's LocaleMiddleware picks a language from the cookie or the browser; a signed-in user's
saved choice (AnnotatorProfile.language) wins over both, on every device. ``choose_language`` saves
it (and the cookie, for the login page before anyone signs in). The saved choice is read once, at
login, into the session: the middleware then costs no query per request (the judging API's
requests are the hot path)."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .models import AnnotatorProfile

LANGUAGE_CODES = {code for code, _ in settings.LANGUAGES}
SESSION_KEY = "ui_language"


def remember_on_login(sender, request, user, **kwargs):
    """``user_logged_in`` receiver (annotate.apps): the user's saved language into the new session."""
    language = AnnotatorProfile.objects.filter(user=user).values_list("language", flat=True).first() or ""
    if language in LANGUAGE_CODES and request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = language


class UserLanguageMiddleware:
    """After SessionMiddleware and LocaleMiddleware: activate the signed-in user's saved language
    (put in the session at login or when chosen; a logout flushes it with the session)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        language = session.get(SESSION_KEY) if session is not None else None
        if language in LANGUAGE_CODES:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


@require_POST
def choose_language(request):
    language = request.POST.get("language", "")
    if language not in LANGUAGE_CODES:
        return HttpResponseBadRequest(f"language: must be one of {', '.join(sorted(LANGUAGE_CODES))}, got {language!r}\n",
                                      content_type="text/plain; charset=utf-8")
    if request.user.is_authenticated:
        AnnotatorProfile.objects.update_or_create(user=request.user, defaults={"language": language})
        request.session[SESSION_KEY] = language
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    response = redirect(target)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax")
    return response


def saved_language(user_id: int | None) -> str:
    """The language the user chose (AnnotatorProfile.language), else the site's default."""
    if user_id is None:
        return settings.LANGUAGE_CODE
    language = AnnotatorProfile.objects.filter(user_id=user_id).values_list("language", flat=True).first()
    return language if language in LANGUAGE_CODES else settings.LANGUAGE_CODE


def in_language_of(user_id: int | None):
    """A worker (Celery) has no request, so no language: what a job stores for its page (an error,
    a warning) is written, under this, in the language of the user who started the job."""
    return translation.override(saved_language(user_id))
