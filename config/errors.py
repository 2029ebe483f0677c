"""One error body for every API, and error pages that answer API clients in JSON.

Every API error is ``{"detail": "<one line a person can read>", <field>: [<messages>], ...}``:
`detail` always, field errors beside it when the problem is in named input fields. DRF's own
errors are brought to that shape by `api_exception_handler`; views build theirs with `api_error`.
A URL that matches no route (e.g. a slug with characters the `<slug:>` converter refuses) or a
crash outside DRF's exception handling reaches Django's handlers below, which answer /api/ in the
same shape instead of HTML.
"""
from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views import defaults
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

# The body's schema in the OpenAPI document.
ErrorSerializer = inline_serializer("Error", fields={"detail": serializers.CharField()})


def error_body(detail: str, **fields) -> dict:
    return {"detail": detail, **fields}


def api_error(detail: str, code: int = status.HTTP_400_BAD_REQUEST, **fields) -> Response:
    """An API error response: `detail`, plus field errors (``params=["..."]``) where they apply."""
    return Response(error_body(detail, **fields), status=code)


def _messages(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_messages(inner)}" for key, inner in value.items())
    if isinstance(value, (list, tuple)):
        return " ".join(_messages(inner) for inner in value)
    return str(value)


def api_exception_handler(exc, context):
    """DRF's handler, its body brought to the one shape: a validation error's field errors stay
    where they were, and `detail` sums them up in one line."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" not in data:
        detail = "; ".join(_messages(messages) if field == "non_field_errors" else f"{field}: {_messages(messages)}"
                           for field, messages in data.items())
        response.data = error_body(detail or "invalid input", **data)
    elif isinstance(data, list):
        response.data = error_body(_messages(data) or "invalid input")
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    """Django's own 400s (a body too big, too many form fields): name the limit that was passed."""
    if _is_api(request):
        return JsonResponse(error_body(_limit_message(exception)), status=400)
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
        return JsonResponse(error_body(_no_route(request)), status=404)
    return defaults.page_not_found(request, exception)


def _no_route(request) -> str:
    return f"No API route matches {request.path!r}."


# What an API error says when only its status is known (ApiErrorsAsJson, server_error).
_STATUS_DETAIL = {
    400: "Bad request.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    405: "Method not allowed.",
    413: "Request body too large.",
    500: "Internal server error; it has been logged.",
}


class ApiErrorsAsJson:
    """Every error answer under /api/ is JSON in the one shape, DEBUG or not.

    With DEBUG on, Django answers an unknown route, an oversized body or a crash with its HTML
    debug pages (which list every URL pattern and the settings) before handler404/400/500 are
    consulted; an API client must get the same JSON body either way. An error a view already
    answered in JSON passes through untouched."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not _is_api(request) or response.status_code < 400 or _is_json(response) or _is_docs_page(request):
            return response
        if response.status_code == 404:
            detail = _no_route(request)
        else:
            detail = _STATUS_DETAIL.get(response.status_code, f"HTTP {response.status_code}.")
        answer = JsonResponse(error_body(detail), status=response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                answer[header] = response[header]
        return answer

    def process_exception(self, request, exception):
        # A body over DATA_UPLOAD_MAX_MEMORY_SIZE is found when a view reads it: name the limit
        # (DEBUG would show a traceback page, production a bare 400).
        if _is_api(request) and isinstance(exception, (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent,
                                                         MultiPartParserError)):
            return JsonResponse(error_body(_limit_message(exception)), status=400)
        return None


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _is_docs_page(request) -> bool:
    return request.path in ("/api/docs/", "/api/redoc/")


def server_error(request):
    if _is_api(request):
        return JsonResponse(error_body(_STATUS_DETAIL[500]), status=500)
    return defaults.server_error(request)
