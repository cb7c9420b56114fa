"""Every error under /api/ answers JSON with ``detail``, in every profile.

The views answer the API's error shape themselves, and handler400/404/500 (portal/views.py) do
for what Django refuses before a view, but only with DEBUG off: with DEBUG on (``make run``),
Django answers an unknown API address with its HTML "technical 404" page and a failure with its
HTML traceback page, before any handler is asked (issue 10). This middleware turns any non-JSON
error answer under /api/ into the API's shape, keeping its status; the traceback is still logged.
"""

from __future__ import annotations

from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse

API_PREFIX = "/api/"
# The same words as portal/views.py's handlers, so a client sees one text per case in every profile.
WORDS = {
    400: "The request was refused as malformed.",
    404: "Nothing answers at this address; the API's routes are at /api/docs/.",
    500: "Something went wrong on the server; it was logged.",
}


class ApiErrorsMiddleware:
    """Replaces an HTML or empty error answer under /api/ with ``{"detail": "<words>"}``."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        # Django's own pages (HTML) and empty answers; a renderer's own format (the schema's YAML,
        # a CSV export) already carries DRF's words.
        content_type = response.get("Content-Type", "")
        empty = not getattr(response, "streaming", False) and not response.content
        if not (content_type.startswith("text/html") or empty):
            return response
        status = response.status_code
        words = WORDS.get(status) or _reason(status)
        replaced = JsonResponse({"detail": words}, status=status)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replaced[header] = response[header]
        return replaced


def _reason(status: int) -> str:
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return f"The request failed ({status})."
