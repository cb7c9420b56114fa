"""Framing by the LMSs: an LMS shows a tool's pages in an iframe. Pages are never framed
(frame-ancestors 'none', X-Frame-Options DENY) except by the origins of registered, active
platforms, which this middleware allows (frame-ancestors 'self' and theirs; X-Frame-Options,
which cannot name several origins, is left off then).

Only a request the browser says is for a frame (``Sec-Fetch-Dest: iframe``, sent by every current
browser) is answered so: a page loaded on its own keeps 'none', and costs no look-up. And only
the pages a launch leads to (the LTI pages, a lab, the class table, a course's page) may be
framed: an LMS page's author must not be able to frame a staff member's account, people or
audit pages and trick clicks on them (the session cookie is SameSite=None in production)."""

from __future__ import annotations

import re
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
FRAMEABLE_PAGES = [
    re.compile(pattern)
    for pattern in (
        r"/lti/",  # the launch, the course choice, the link back
        r"/labs/\d+/",  # a lab and its pages (console, snapshots, ...)
        r"/labs/courses/\d+/(mine/|fragments/table/|consoles/)?$",  # a student's way in; the class table
        r"/labs/operations/\d+/$",
        r"/courses/\d+/$",  # a course's page (its Start button)
    )
]


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
        if not any(pattern.match(request.path) for pattern in FRAMEABLE_PAGES):
            return response
        origins = framing_origins()
        if origins:
            response._csp_replace = {**getattr(response, "_csp_replace", {}), "frame-ancestors": ["'self'", *origins]}
            response.xframe_options_exempt = True
        return response
