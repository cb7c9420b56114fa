"""How Nestlab calls an LMS (its key set, its token endpoint, roster and grade services)."""

from __future__ import annotations

import requests

# A slow or silent LMS must not hold a web thread or a worker for ever.
LMS_TIMEOUT_SECONDS = 10


class LmsSession(requests.Session):
    """A requests session whose every call gives up after LMS_TIMEOUT_SECONDS."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", LMS_TIMEOUT_SECONDS)
        return super().request(*args, **kwargs)
