import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()


def _warm_up() -> None:
    """Load the tokeniser (jieba's dictionary) now, not in the first annotator's request."""
    try:
        from mining.text.tokenize import tokenize

        tokenize("预热 warm up", method="auto")
    except Exception:  # never stop the web process over a warm-up
        import logging

        logging.getLogger(__name__).warning("tokeniser warm-up failed", exc_info=True)


_warm_up()
