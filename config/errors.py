"""Error pages that answer API clients in JSON.

DRF renders its own errors as JSON, but a URL that matches no route (e.g. a slug with characters
the `<slug:>` converter refuses) or a crash outside DRF's exception handling reaches Django's
handlers, which render HTML. An API client should get a body it can read either way.
"""
from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import JsonResponse
from django.views import defaults


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    """Django's own 400s (a body too big, too many form fields): name the limit that was passed."""
    if _is_api(request):
        return JsonResponse({"detail": _limit_message(exception)}, status=400)
    return defaults.bad_request(request, exception)


def _limit_message(exception) -> str:
    if isinstance(exception, RequestDataTooBig):
        megabytes = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
        return (f"Request body is larger than {megabytes:g} MB (DATA_UPLOAD_MAX_MEMORY_SIZE); upload large files "
                "as multipart form data to the imports endpoint.")
    if isinstance(exception, TooManyFieldsSent):
        return f"Request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} form fields (DATA_UPLOAD_MAX_NUMBER_FIELDS)."
    if isinstance(exception, TooManyFilesSent):
        return f"Request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files (DATA_UPLOAD_MAX_NUMBER_FILES)."
    return f"Bad request: {exception}" if exception else "Bad request."


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": f"No API route matches {request.path!r}."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error; it has been logged."}, status=500)
    return defaults.server_error(request)
