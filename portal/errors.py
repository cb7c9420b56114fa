"""Domain errors shared by services, pages and the API (the API maps them to HTTP)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied


class Conflict(Exception):
    """The object is busy: e.g. a lab with an operation running (HTTP 409)."""


class QuotaExceeded(PermissionDenied):
    """A quota limit refuses the action; the message names the limit and the usage (HTTP 403)."""


class ServiceUnavailable(Exception):
    """A service the portal relies on (Redis, the database) cannot be reached; the message says which."""
