"""Domain errors shared by services, pages and the API (the API maps them to HTTP)."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError


class Conflict(Exception):
    """The object is busy: e.g. a lab with an operation running (HTTP 409)."""


class TooSoon(Conflict):
    """Asked again too soon: a rate limit (e.g. "Check my work" per lab) refuses it for now (HTTP 429).
    ``retry_after`` says in how many seconds it would be accepted."""

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(PermissionDenied):
    """A quota limit refuses the action; the message names the limit and the usage (HTTP 403)."""


class ServiceUnavailable(Exception):
    """A service the portal relies on (Redis, the database) cannot be reached; the message says which."""


# What a service's refusal is, for whoever answers it: the one map (the API's exception handler
# answers raised ones itself; outcomes a service collects, e.g. per lab of a bulk action, use these).
REFUSALS = (ValidationError, PermissionDenied, Conflict, ObjectDoesNotExist)


def refusal_status(refusal: Exception) -> int:
    """The HTTP status of a refusal: 400 bad input, 403 not allowed (a quota too), 404 no such
    object (for this person), 409 busy, 429 asked again too soon."""
    if isinstance(refusal, ValidationError):
        return 400
    if isinstance(refusal, PermissionDenied):
        return 403
    if isinstance(refusal, ObjectDoesNotExist):
        return 404
    if isinstance(refusal, TooSoon):
        return 429
    if isinstance(refusal, Conflict):
        return 409
    raise TypeError(f"Not a refusal: {type(refusal).__name__}")


def refusal_words(refusal: Exception) -> str:
    """A refusal in words, as pages and the API show it."""
    if isinstance(refusal, ValidationError):
        return " ".join(refusal.messages)
    return str(refusal) or "You are not allowed to do that."
