"""Logging filters, named in settings.LOGGING (so this module imports nothing of Django's: it is
loaded while logging is configured, before the apps)."""


class ClientErrorsWithoutTraceback:
    """A logging filter: a 4xx that django.request logs (a refusal, a missing page) is one line, not
    a traceback -- the client asked for something it may not have, nothing in the code failed.
    5xx keep their traceback."""

    def filter(self, record) -> bool:
        if record.name == "django.request" and getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
