"""Login throttling: after LOGIN_FAILURE_LIMIT failed passwords for a username, that username is
locked for LOGIN_LOCKOUT_SECONDS, on the login page and for HTTP Basic on the API alike.

Counted per username, not per client address: behind a reverse proxy every request can carry the
proxy's address, and locking an address would lock everyone out. The counter sits in the
"login_throttle" cache (Redis in production, so all gunicorn workers share it). If that cache is
unreachable, logins go on unthrottled and a warning is logged: an outage of Redis should not lock
every annotator out.
"""
from __future__ import annotations

import hashlib
import logging
import time

from django import forms
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication

log = logging.getLogger(__name__)


class LockedOut(Exception):
    def __init__(self, seconds_left: int):
        self.seconds_left = seconds_left
        minutes = max(1, -(-seconds_left // 60))
        super().__init__(f"Too many failed logins for this username; try again in {minutes} minute"
                         f"{'s' if minutes != 1 else ''}.")


def _key(username: str) -> str:
    # Hashed: usernames are arbitrary text and cache keys have a restricted alphabet.
    return "fail:" + hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()


def _cache():
    return caches["login_throttle"]


def check(username: str) -> None:
    """Raise LockedOut while `username` is locked."""
    try:
        entry = _cache().get(_key(username))
    except Exception:  # the cache backend's connection errors have no common base class
        log.warning("login throttle cache unreachable; not throttling", exc_info=True)
        return
    if entry and entry["count"] >= settings.LOGIN_FAILURE_LIMIT:
        left = int(entry["until"] - time.time())
        if left > 0:
            raise LockedOut(left)


def record_failure(username: str) -> None:
    """Count a failed password; the window restarts with each failure (a lockout lasts from the last)."""
    try:
        cache = _cache()
        key = _key(username)
        entry = cache.get(key) or {"count": 0}
        entry = {"count": entry["count"] + 1, "until": time.time() + settings.LOGIN_LOCKOUT_SECONDS}
        cache.set(key, entry, timeout=settings.LOGIN_LOCKOUT_SECONDS)
    except Exception:
        log.warning("login throttle cache unreachable; failure not counted", exc_info=True)


def reset(username: str) -> None:
    try:
        _cache().delete(_key(username))
    except Exception:
        log.warning("login throttle cache unreachable", exc_info=True)


class ThrottledModelBackend(ModelBackend):
    """Django's username/password check, refused while the username is locked, counting failures."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(self._username_field())
        if username is None or password is None:
            return None
        try:
            check(username)
        except LockedOut:
            # PermissionDenied stops authenticate() here: no password is even tried while locked.
            raise PermissionDenied from None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            record_failure(username)
        else:
            reset(username)
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


class ThrottledAuthenticationForm(AuthenticationForm):
    """The login form, saying that the username is locked and for how long instead of 'wrong password'."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if username:
            try:
                check(username)
            except LockedOut as locked:
                raise forms.ValidationError(str(locked), code="locked_out") from None
        return super().clean()


class ThrottledBasicAuthentication(BasicAuthentication):
    """HTTP Basic for the API, answering a locked username with the lockout message."""

    def authenticate_credentials(self, userid, password, request=None):
        try:
            check(userid)
        except LockedOut as locked:
            raise exceptions.AuthenticationFailed(str(locked)) from None
        return super().authenticate_credentials(userid, password, request)


class ThrottledLoginView(LoginView):
    """The login page; a locked-out username gets HTTP 429 and the lockout message."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form):
        locked = [error for error in form.errors.as_data().get("__all__", []) if error.code == "locked_out"]
        response = self.render_to_response(self.get_context_data(
            form=form, locked_out=locked[0].messages[0] if locked else None))
        if locked:
            response.status_code = 429
        return response
