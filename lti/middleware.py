"""Framing by the LMSs: an LMS shows a tool's pages in an iframe. Pages are never framed
(frame-ancestors 'none', X-Frame-Options DENY) except by the origins of registered, active
platforms, which this middleware allows (frame-ancestors 'self' and theirs; X-Frame-Options,
which cannot name several origins, is left off then).

Only a request the browser says is for a frame (``Sec-Fetch-Dest: iframe``, sent by every current
browser) is answered so: a page loaded on its own keeps 'none', and costs no look-up."""

from __future__ import annotations

import time

from django.db import DatabaseError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from lti import selectors
from lti.models import Platform

# The origins are read at most this often per process; a change made in this process (the
# admin, the API) is seen at once, one made by another process within this many seconds.
ORIGINS_MAX_AGE_SECONDS = 30.0
_origins: tuple[float, list[str]] | None = None
FRAME_DESTINATIONS = {"iframe", "frame"}


def framing_origins() -> list[str]:
    """The active platforms' origins; none while the database cannot be read (never framed then)."""
    global _origins
    if _origins is None or time.monotonic() - _origins[0] > ORIGINS_MAX_AGE_SECONDS:
        try:
            _origins = (time.monotonic(), selectors.framing_origins())
        except DatabaseError:
            return []
    return _origins[1]


def forget_framing_origins() -> None:
    """Read the origins again at the next request."""
    global _origins
    _origins = None


@receiver([post_save, post_delete], sender=Platform)
def _platforms_changed(**kwargs) -> None:
    forget_framing_origins()


class LmsFramingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.headers.get("Sec-Fetch-Dest") not in FRAME_DESTINATIONS:
            return response
        if request.path.startswith(("/admin/", "/api/")):
            return response  # the admin and the API are never shown inside an LMS
        origins = framing_origins()
        if origins:
            response._csp_replace = {**getattr(response, "_csp_replace", {}), "frame-ancestors": ["'self'", *origins]}
            response.xframe_options_exempt = True
        return response
