"""How a page answers a refusal: the one way, for every app's pages.

A service refuses by raising: ValidationError (bad input), PermissionDenied (not allowed, a
quota too), Conflict (busy). A page shows the words as a message or on its form, or answers a
403 page; a refusal of a right is recorded in the audit log once, however often its words are
asked for (core.audit.refusal_answered). The API answers the same exceptions in its exception
handler (core.api), with the status core.errors.refusal_status gives.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core import audit
from core.errors import refusal_words

FORBIDDEN_TEMPLATE = "core/forbidden.html"


def refusal_message(request: HttpRequest, refusal: Exception, target: models.Model | None = None) -> str:
    """The refusal in words for a message or a form; a PermissionDenied is recorded as it is
    answered, about ``target`` or else the object the route names."""
    if isinstance(refusal, PermissionDenied):
        return audit.refusal_answered(request, refusal, target=target)
    return refusal_words(refusal)


def forbidden(
    request: HttpRequest, refusal: PermissionDenied | str, target: models.Model | None = None
) -> HttpResponse:
    """The 403 page with the refusal's words, recorded once."""
    message = audit.refusal_answered(request, refusal, target=target)
    return render(request, FORBIDDEN_TEMPLATE, {"message": message}, status=403)


def add_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form: on its field when the form has one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)
