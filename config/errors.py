"""Error pages that answer API clients in JSON.

DRF renders its own errors as JSON, but a URL that matches no route (e.g. a slug with characters
the `<slug:>` converter refuses) or a crash outside DRF's exception handling reaches Django's
handlers, which render HTML. An API client should get a body it can read either way.
"""
from django.http import JsonResponse
from django.views import defaults


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": f"No API route matches {request.path!r}."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error; it has been logged."}, status=500)
    return defaults.server_error(request)
